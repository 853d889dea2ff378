/**
 * The clock for intervals (rate limits, floors, "no reading for N min"). The wall clock (Date.now)
 * is for timestamps that are stored, sent or shown; NTP steps it, by hours on a gateway that booted
 * with a wrong clock, so an interval measured on it goes negative or jumps. Here so that the agent
 * and sync both reach it (sync/ may be imported by both).
 */

/** Milliseconds from an arbitrary origin that never step, only advance (performance.now()). */
export const monotonicNow = (): number => performance.now();
