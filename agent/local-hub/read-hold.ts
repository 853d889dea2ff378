/**
 * A test hook: the answers to a module's twin GET requests held back, as a slow hub would hold
 * them, until release(). Meanwhile the hub goes on working (desired patches, reported updates).
 */
export type AnswerAt = 'request' | 'release';

export class TwinReadHold {
  private readonly held: Array<() => void> = [];
  private readonly waiting: Array<() => void> = [];
  private active = true;

  /**
   * @param answerAt 'request': the answer is the twin as it was when the module asked (a patch
   *   sent meanwhile is not in it); 'release': the twin as it is when released.
   * @param ended called once released (the hub stops holding this module's reads)
   */
  constructor(
    readonly answerAt: AnswerAt,
    private readonly ended: () => void,
  ) {}

  /** Twin reads held now. */
  get pending(): number {
    return this.held.length;
  }

  /** Resolves once a twin read is held. */
  requested(): Promise<void> {
    if (this.held.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Answers every held read and stops holding; later reads are answered at once. */
  release(): void {
    if (!this.active) return;
    this.active = false;
    this.ended();
    for (const answer of this.held.splice(0)) answer();
  }

  /** Holds one read (called by the hub): `send` answers it with `view()`. */
  hold(send: (body: string) => void, view: () => string): void {
    const body = this.answerAt === 'request' ? view() : null;
    this.held.push(() => send(body ?? view()));
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}
