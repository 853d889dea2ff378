/**
 * The contract version of the messages on output `alerts` (alerts.ts and status-messages.ts), one
 * number for the whole output: a consumer (Stream Analytics, a Function, a SCADA gateway) tells
 * which shape it holds, and refuses one it does not understand. It goes in the body
 * (`schemaVersion`) and as a message property (runtime.ts), so an IoT Hub route filters on it
 * without parsing the body.
 *
 * Raised only on a breaking change: a field removed, renamed, or its meaning changed. Added fields
 * and new kinds keep it: consumers ignore what they do not know, and park a message whose version is
 * higher than the one they understand.
 */
export const ALERTS_SCHEMA_VERSION = 1;

/**
 * The version of a message body: messages of agents before the field (alerts an older agent left
 * pending, sent by this one) have none, and are of version 1, not of the version sending them.
 */
export function schemaVersionOf(body: { schemaVersion?: number }): number {
  return body.schemaVersion ?? 1;
}
