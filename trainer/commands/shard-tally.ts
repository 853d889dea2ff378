/**
 * Where a train-all shard stands: the sources done (by outcome), those being trained, and those not
 * started. A pod evicted or past the Job's activeDeadlineSeconds gets SIGTERM and exits 143; the
 * line this gives (stop-notes.ts) says what was left, where before the log ended with no word of it.
 */
import { addStopNote } from '../stop-notes.js';
import { mapLimited } from '../train/sources.js';

export class ShardTally {
  private readonly done = new Map<string, number>();
  private readonly running = new Set<string>();
  private finished = 0;

  /**
   * `shard`: as the run's lines name it (`shard 3/16`); `total`: the sources of the shard; `json`
   * (--json): a stop also ends stdout with a JSON line saying the same, since the run's summary line
   * never comes and a reader of stdout alone would not know the lines stopped short.
   */
  constructor(
    private readonly shard: string,
    private readonly total: number,
    private readonly json = false,
  ) {}

  /** mapLimited over the shard's sources, each counted as it starts and ends, with the stop note in force meanwhile. */
  async map<R extends { status: string }>(sources: readonly string[], concurrency: number, fn: (source: string) => Promise<R>): Promise<R[]> {
    const remove = addStopNote((signal) => ({ err: this.stoppedLine(signal), ...(this.json ? { out: JSON.stringify({ stopped: this.stoppedFigures(signal) }) } : {}) }));
    try {
      return await mapLimited(sources, concurrency, async (source) => {
        this.running.add(source);
        const result = await fn(source);
        this.running.delete(source);
        this.finished++;
        this.done.set(result.status, (this.done.get(result.status) ?? 0) + 1);
        return result;
      });
    } finally {
      remove();
    }
  }

  /** What stoppedLine says, as --json's last line: `{"stopped": {"signal": "SIGTERM", "shard": "3/16", "done": {"promoted": 2, …}, "interrupted": [...], "notStarted": 26}}`. */
  stoppedFigures(signal: string): Record<string, unknown> {
    return {
      signal,
      shard: this.shard.replace(/^shard /, ''),
      done: Object.fromEntries(this.done),
      interrupted: [...this.running],
      notStarted: this.total - this.finished - this.running.size,
    };
  }

  /** `train-all: shard 3/16: stopped by SIGTERM: 12 done (2 promoted, 9 kept, 1 skipped, 0 failed), 2 interrupted (pump-a, pump-b), 26 not started`. */
  stoppedLine(signal: string): string {
    const n = (status: string) => this.done.get(status) ?? 0;
    const notTried = `${n('done already') > 0 ? `, ${n('done already')} done already` : ''}${n('not tried') > 0 ? `, ${n('not tried')} not tried` : ''}`;
    const interrupted = this.running.size > 0 ? ` (${[...this.running].join(', ')})` : '';
    const notStarted = this.total - this.finished - this.running.size;
    return (
      `train-all: ${this.shard}: stopped by ${signal}: ${this.finished} done (${n('promoted')} promoted, ${n('kept')} kept, ${n('skipped')} skipped, ${n('failed')} failed${notTried}), ` +
      `${this.running.size} interrupted${interrupted}, ${notStarted} not started`
    );
  }
}
