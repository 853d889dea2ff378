/**
 * A budget of bytes shared by concurrent requests, granted in arrival order. The readings route
 * holds a request's share from before its body is read until its readings are committed, so the
 * bodies the agent holds at once (each as bytes, text, parsed objects and rows: several times its
 * size) stay bounded however many clients post. A request waiting for its share is not read: TCP
 * holds its client back. A body of unknown length (chunked) takes a share that grows with the bytes
 * it has sent (`grow`): counted as the whole budget up front, one client dripping a chunked body
 * held every other client's readings back until its request timed out.
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

  /**
   * A share that starts empty and takes `grow(bytes)` more at a time, only while they fit beside
   * what is granted and no request waits for a share: false otherwise (the caller refuses its
   * request rather than wait, as two growing shares waiting for each other's bytes would wait for
   * ever; and requests waiting go first, in arrival order: the re-review saw 24 chunked clients
   * keep a declared 9 MB body waiting past 2 min while 132 chunked ones went by). `release` gives
   * back everything it took.
   */
  growing(): { grow: (bytes: number) => boolean; release: () => void } {
    let held = 0;
    return {
      grow: (bytes) => {
        if (this.waiting.length > 0 || this.used + bytes > this.limit()) return false;
        this.used += bytes;
        held += bytes;
        return true;
      },
      release: () => {
        this.used -= held;
        held = 0;
        this.grant();
      },
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
