/**
 * A budget of bytes shared by concurrent requests, granted in arrival order. The readings route
 * holds a request's share from before its body is read until its readings are committed, so the
 * bodies the agent holds at once (each as bytes, text, parsed objects and rows: several times its
 * size) stay bounded however many clients post. A request waiting for its share is not read: TCP
 * holds its client back.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiting: Array<{ bytes: number; go: () => void }> = [];

  constructor(private readonly limit: () => number) {}

  /** Waits until `bytes` (at most the whole budget) fit; resolves with the function that gives them back. */
  async acquire(bytes: number): Promise<() => void> {
    const n = Math.max(0, Math.min(bytes, this.limit()));
    if (n > 0 && (this.waiting.length > 0 || this.used + n > this.limit())) {
      await new Promise<void>((go) => this.waiting.push({ bytes: n, go }));
    } else {
      this.used += n;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= n;
      this.grant();
    };
  }

  /** Bytes granted now, and requests waiting for a share. */
  status(): { used: number; waiting: number } {
    return { used: this.used, waiting: this.waiting.length };
  }

  private grant(): void {
    while (this.waiting.length > 0 && this.used + this.waiting[0]!.bytes <= this.limit()) {
      const next = this.waiting.shift()!;
      this.used += next.bytes;
      next.go();
    }
  }
}
