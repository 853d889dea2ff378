/** What the local hub remembers about module messages: outputs received, inputs delivered and acknowledged. */
import type { ModuleIdentity } from './broker.js';
import { LocalHubError } from './errors.js';

export interface OutputMessage {
  deviceId: string;
  moduleId: string;
  /** `$.on` of the message (the name given to sendOutputEvent); null for a plain sendEvent. */
  outputName: string | null;
  body: Buffer;
  /** Application properties of the message. */
  properties: Record<string, string>;
  /** System properties (`$.mid`, `$.cid`, `$.ct`, `$.ce`, `$.on`, …). */
  systemProperties: Record<string, string>;
  receivedAt: Date;
}

export class OutputLog {
  private readonly messages: OutputMessage[] = [];

  record(message: OutputMessage): void {
    this.messages.push(message);
  }

  list(deviceId: string, moduleId: string, outputName?: string): OutputMessage[] {
    return this.messages.filter(
      (m) => m.deviceId === deviceId && m.moduleId === moduleId && (outputName === undefined || m.outputName === outputName),
    );
  }
}

interface Delivery extends ModuleIdentity {
  completed: boolean;
  waiters: Array<() => void>;
}

/** Input messages by message id; an MQTT PUBACK from the module completes one. */
export class DeliveryTracker {
  private readonly deliveries = new Map<string, Delivery>();

  track(messageId: string, identity: ModuleIdentity): void {
    this.deliveries.set(messageId, { ...identity, completed: false, waiters: [] });
  }

  /** Marks a delivery complete; returns its module the first time, null otherwise. */
  complete(messageId: string): ModuleIdentity | null {
    const delivery = this.deliveries.get(messageId);
    if (!delivery || delivery.completed) return null;
    delivery.completed = true;
    for (const wake of delivery.waiters.splice(0)) wake();
    return { deviceId: delivery.deviceId, moduleId: delivery.moduleId };
  }

  isCompleted(messageId: string): boolean {
    return this.deliveries.get(messageId)?.completed ?? false;
  }

  /** Resolves when the message is acknowledged; resolves at once when it already was. */
  whenCompleted(messageId: string): Promise<void> {
    const delivery = this.deliveries.get(messageId);
    if (!delivery) return Promise.reject(new LocalHubError('PW_LOCALHUB_UNKNOWN_MESSAGE', `no input message ${messageId} was delivered by this hub`));
    if (delivery.completed) return Promise.resolve();
    return new Promise<void>((resolve) => delivery.waiters.push(resolve));
  }
}
