/**
 * A node's life: what must be closed on shutdown (in reverse order of opening), whether it is
 * closing, and the fatal error that stops it on its own.
 */

/** Shutdown bookkeeping shared by the parts of one node. */
export class NodeLifecycle {
  private readonly closers: (() => Promise<void>)[] = [];
  private closingNow = false;
  private fatalResolve: (e: unknown) => void = () => undefined;
  /** Resolves with the error that stopped the node on its own (never rejects). */
  readonly fatal: Promise<unknown> = new Promise<unknown>((r) => (this.fatalResolve = r));

  /** @returns whether shutdown has begun: new work is refused, retries stop */
  get closing(): boolean {
    return this.closingNow;
  }

  /**
   * Registers what to close at shutdown; closers run in reverse order of registration.
   *
   * @param close - releases one part (errors are ignored at shutdown)
   */
  onClose(close: () => Promise<void> | void): void {
    this.closers.push(async () => close());
  }

  /** Reports a fatal error (resolves {@link fatal}). */
  failed(err: unknown): void {
    this.fatalResolve(err);
  }

  /** Marks the node closing and closes every registered part, newest first. */
  async close(): Promise<void> {
    this.closingNow = true;
    for (const c of this.closers.reverse()) await c().catch(() => undefined);
    this.closers.length = 0;
  }
}
