/**
 * Progress of a long command: a bar redrawn in place on a terminal, plain log lines otherwise
 * (a Kubernetes pod, a CI log). Plain lines are written at each stage and at most every 10 % of
 * a stage with a known total, so logs stay short on a million rows.
 */

export interface Progress {
  /** A new stage; `total` when the amount of work is known. */
  stage(name: string, total?: number): void;
  /** Work done in the current stage. */
  update(done: number): void;
  /** A line that stays (a result, a warning). */
  note(text: string): void;
  /** Clears the bar. */
  finish(): void;
}

/**
 * Runs `work` and clears the bar on every way out (an error, a skip, the result): what is printed
 * next on a terminal must not be glued to the bar.
 */
export async function finishing<T>(progress: Progress, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } finally {
    progress.finish();
  }
}

export interface ProgressSink {
  /** Writes raw text to the terminal (no newline added). */
  raw?(text: string): void;
  line(text: string): void;
}

const BAR = 24;

export function createProgress(sink: ProgressSink, tty: boolean, label: string): Progress {
  return tty && sink.raw ? new TerminalProgress(sink as Required<ProgressSink>, label) : new LineProgress(sink, label);
}

class LineProgress implements Progress {
  private name = '';
  private total: number | undefined;
  private lastTenth = -1;
  constructor(
    private readonly sink: ProgressSink,
    private readonly label: string,
  ) {}

  stage(name: string, total?: number): void {
    this.name = name;
    this.total = total;
    this.lastTenth = -1;
    this.sink.line(`${this.label}: ${name}${total !== undefined ? ` (${total})` : ''}`);
  }

  update(done: number): void {
    if (this.total === undefined || this.total <= 0) return;
    const tenth = Math.floor((10 * done) / this.total);
    if (tenth <= this.lastTenth || tenth === 0) return;
    this.lastTenth = tenth;
    this.sink.line(`${this.label}: ${this.name} ${Math.min(100, tenth * 10)} % (${done}/${this.total})`);
  }

  note(text: string): void {
    this.sink.line(`${this.label}: ${text}`);
  }

  finish(): void {}
}

class TerminalProgress implements Progress {
  private name = '';
  private total: number | undefined;
  private drawn = false;
  private lastDraw = 0;
  constructor(
    private readonly sink: Required<ProgressSink>,
    private readonly label: string,
  ) {}

  stage(name: string, total?: number): void {
    this.name = name;
    this.total = total;
    this.draw(0, true);
  }

  update(done: number): void {
    this.draw(done, false);
  }

  note(text: string): void {
    this.clear();
    this.sink.line(`${this.label}: ${text}`);
  }

  finish(): void {
    this.clear();
  }

  private draw(done: number, force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    let bar = '';
    if (this.total !== undefined && this.total > 0) {
      const share = Math.min(1, done / this.total);
      const full = Math.round(share * BAR);
      bar = ` [${'#'.repeat(full)}${'.'.repeat(BAR - full)}] ${Math.round(share * 100)} %`;
    } else if (done > 0) bar = ` ${done}`;
    this.sink.raw(`\r\x1b[2K${this.label}: ${this.name}${bar}`);
    this.drawn = true;
  }

  private clear(): void {
    if (this.drawn) this.sink.raw('\r\x1b[2K');
    this.drawn = false;
  }
}

/** A progress that shows nothing (library use, tests). */
export const silentProgress: Progress = { stage: () => {}, update: () => {}, note: () => {}, finish: () => {} };
