/**
 * Circuit breaker: closed → (N consecutive availability failures) → open → (probe delay elapses)
 * → half-open (exactly one probe in flight) → closed on success, or open again with the probe
 * delay doubled up to a ceiling.
 */

/** Breaker parameters. */
export interface BreakerOptions {
  /** Consecutive availability failures that open the breaker. */
  failureThreshold: number;
  /** Wait before the first half-open probe. */
  firstProbeMs: number;
  /** Ceiling for the (doubling) probe wait. */
  maxProbeMs: number;
}

/** Breaker state names. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Callbacks for state changes. */
export interface BreakerListener {
  /** The breaker opened (or re-opened after a failed probe). */
  onOpen(info: { failures: number; retryInMs: number }): void;
  /** A probe succeeded; the breaker closed. */
  onClose(): void;
}

/** See the module comment. Time comes from the injected clock. */
export class CircuitBreaker {
  readonly #opts: BreakerOptions;
  readonly #now: () => number;
  readonly #listener: BreakerListener;
  #state: BreakerState = 'closed';
  #failures = 0;
  #probeDelayMs: number;
  #nextProbeAt = 0;

  /**
   * @param opts - thresholds
   * @param now - clock in ms
   * @param listener - notified on open/close
   */
  constructor(opts: BreakerOptions, now: () => number, listener: BreakerListener) {
    this.#opts = opts;
    this.#now = now;
    this.#listener = listener;
    this.#probeDelayMs = opts.firstProbeMs;
  }

  /** @returns the current state */
  get state(): BreakerState {
    return this.#state;
  }

  /** @returns consecutive failures counted so far */
  get failures(): number {
    return this.#failures;
  }

  /** @returns ms until the next probe may go out (0 when closed or due) */
  retryInMs(): number {
    return this.#state === 'closed' ? 0 : Math.max(0, this.#nextProbeAt - this.#now());
  }

  /**
   * Ask to send a request. When open and the probe delay has elapsed, the caller becomes the one
   * half-open probe; everyone else is refused until it reports.
   *
   * @returns true when the request may go out
   */
  tryAcquire(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'half-open') return false;
    if (this.#now() < this.#nextProbeAt) return false;
    this.#state = 'half-open';
    return true;
  }

  /** The service answered (any definite answer, including 4xx). */
  recordSuccess(): void {
    const wasClosed = this.#state === 'closed';
    this.#state = 'closed';
    this.#failures = 0;
    this.#probeDelayMs = this.#opts.firstProbeMs;
    if (!wasClosed) this.#listener.onClose();
  }

  /** The service could not be reached or could not decide. */
  recordFailure(): void {
    this.#failures += 1;
    if (this.#state === 'half-open') {
      this.#probeDelayMs = Math.min(this.#opts.maxProbeMs, this.#probeDelayMs * 2);
      this.#open();
    } else if (this.#state === 'closed' && this.#failures >= this.#opts.failureThreshold) {
      this.#probeDelayMs = this.#opts.firstProbeMs;
      this.#open();
    }
  }

  #open(): void {
    this.#state = 'open';
    this.#nextProbeAt = this.#now() + this.#probeDelayMs;
    this.#listener.onOpen({ failures: this.#failures, retryInMs: this.#probeDelayMs });
  }
}
