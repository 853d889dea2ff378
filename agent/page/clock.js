// The gateway's clock, as seen from this device. Ages ("3 min ago"), "data as of" and the times the
// label dialog offers are the gateway's: the readings' times are, and a phone's clock may be hours
// off (no NTP on the gateway's Wi-Fi, a clock set by hand). The skew is measured at each answer
// that carries the gateway's time (`/pumps` `at`, the live stream's `hello`).

let skewMs = 0;
let measured = false;

/**
 * Notes the gateway's time `at` (ISO) of an answer requested at `sentAt` and received at
 * `receivedAt` (this device's Date.now()): the answer was made between the two, so the middle is
 * off by at most half the round trip.
 */
export function noteGatewayTime(at, sentAt, receivedAt = sentAt) {
  const gateway = Date.parse(at);
  if (!Number.isFinite(gateway) || !Number.isFinite(sentAt) || !Number.isFinite(receivedAt)) return;
  skewMs = gateway - (sentAt + receivedAt) / 2;
  measured = true;
}

/** Now on the gateway's clock (this device's clock until the gateway's time is known). */
export const gatewayNow = () => Date.now() + skewMs;

/** How far the gateway's clock is ahead of this device's (negative: behind), in ms. */
export const clockSkewMs = () => skewMs;

/** The skew is known (an answer carrying the gateway's time has arrived). */
export const skewKnown = () => measured;

/** A difference worth telling the technician: more than two minutes. */
export const SKEW_NOTICE_MS = 2 * 60_000;
