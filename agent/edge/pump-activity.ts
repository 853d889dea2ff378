/**
 * When each pump this gateway serves was last active, for the reported `pumps` (the trainer's
 * deploy finds gateways by them): the most recently active first, and a pump inactive for
 * `forgetAfterMs` no longer listed. A pump the engine knows but that has not committed readings
 * since start-up (seeded from the buffer) counts as active when its newest reading was received
 * (`lastReceived`), else when first noticed.
 */
export const DEFAULT_FORGET_AFTER_MS = 30 * 86_400_000;

export class PumpActivity {
  private readonly lastActive = new Map<string, number>();

  constructor(
    private readonly opts: {
      /** The pumps the engine knows (readings taken since start, or in the buffer). */
      known: () => string[];
      /** When a pump's newest stored reading was received (the buffer), for pumps seen before start-up. */
      lastReceived?: (pumpId: string) => number | null;
      forgetAfterMs?: number;
      clock?: () => number;
    },
  ) {}

  /** Readings of these pumps were committed now; true when one of them was not listed before. */
  active(pumpIds: Iterable<string>): boolean {
    const now = this.now();
    const cutoff = now - this.forgetAfterMs();
    let added = false;
    for (const id of pumpIds) {
      const before = this.lastActive.get(id);
      if (before === undefined || before < cutoff) added = true;
      this.lastActive.set(id, now);
    }
    return added;
  }

  /** The pumps active within `forgetAfterMs`, the most recently active first (ties by id). */
  recent(): string[] {
    const now = this.now();
    const known = new Set(this.opts.known());
    for (const id of known) if (!this.lastActive.has(id)) this.lastActive.set(id, Math.min(now, this.opts.lastReceived?.(id) ?? now));
    for (const id of this.lastActive.keys()) if (!known.has(id)) this.lastActive.delete(id);
    const cutoff = now - this.forgetAfterMs();
    return [...this.lastActive]
      .filter(([, at]) => at >= cutoff)
      .sort(([a, at], [b, bt]) => bt - at || (a < b ? -1 : a > b ? 1 : 0))
      .map(([id]) => id);
  }

  private forgetAfterMs(): number {
    return this.opts.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS;
  }

  private now(): number {
    return (this.opts.clock ?? Date.now)();
  }
}
