/**
 * The pumps this agent takes readings of, at most `PUMPWATCH_MAX_PUMPS`. Every pump costs memory
 * for as long as the agent runs (its scoring windows and history in the engine, its card on the
 * page, its alert state, its sync ranges): about 30 kB with 8 sensors, up to about 0.8 MB with 256.
 * Without a bound, one request of readings under 50 000 made-up ids would exhaust a gateway.
 *
 * A pump counts from its first accepted reading, and from the buffer's rows at start-up, until a
 * restart after its rows have left the buffer. Readings of a pump beyond the limit are refused
 * with the reason (kept in `rejected`, like any refused reading).
 */
export class PumpRoster {
  private readonly known = new Set<string>();
  private seeded = false;

  /**
   * @param limit the most pumps, read at every new pump (a restart-only setting today)
   * @param stored the pump ids the buffer holds rows of; read once, at the first new pump
   */
  constructor(
    private readonly limit: () => number,
    private readonly stored: () => readonly string[],
  ) {}

  /** Null when readings of `pumpId` are taken (it is now known), else the reason they are refused. */
  admit(pumpId: string): string | null {
    if (this.known.has(pumpId)) return null;
    if (!this.seeded) this.seed();
    if (this.known.has(pumpId)) return null;
    const limit = this.limit();
    if (this.known.size >= limit) {
      return `pumpId: "${pumpId}" would be a new pump, and this gateway already takes readings of ${this.known.size} pumps, the most PUMPWATCH_MAX_PUMPS (${limit}) allows`;
    }
    this.known.add(pumpId);
    return null;
  }

  /** Whether readings of `pumpId` are taken: it counts against the limit. */
  has(pumpId: string): boolean {
    if (!this.seeded) this.seed();
    return this.known.has(pumpId);
  }

  private seed(): void {
    let stored: readonly string[];
    try {
      stored = this.stored();
    } catch {
      return; // the buffer is not open yet: seeded at the next new pump
    }
    for (const id of stored) this.known.add(id);
    this.seeded = true;
  }

  size(): number {
    return this.known.size;
  }
}
