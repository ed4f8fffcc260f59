/**
 * Portkey's circuit breaker (`strategy.cb_config`): a target that keeps failing is skipped for `cooldown_interval`, so
 * that during an outage a request does not pay for its failed attempt first. As in Portkey, each provider target under
 * a `cb_config` has a circuit, and a nested strategy counts as open when all of its targets are. State lives in the
 * process, per routing config; a new Gateway starts closed.
 */

export interface CircuitPolicy {
  /** Failures that open a circuit; null: only the rate opens it. */
  failureThreshold: number | null;
  /** Failure rate in percent that opens a circuit, once `minimumRequests` were counted; null: only the count. */
  failurePercentage: number | null;
  minimumRequests: number;
  /** How long an open circuit stays open; also the window over which outcomes are counted (its last 0.9-1.0). */
  cooldownMs: number;
  /** Statuses that count as failures; null: every status >= 500. */
  failureStatusCodes: ReadonlySet<number> | null;
}

/** Portkey's floor for `cooldown_interval`: a shorter one counts as this. */
export const MIN_COOLDOWN_MS = 30_000;
/** Outcomes are counted in this many slices of the window, the oldest dropped as time moves on. */
const SLICES = 10;

/** What changed a circuit, for the warning that says so. */
export type CircuitChange =
  | { kind: 'opened'; failures: number; requests: number }
  /** The request let through after the cooldown failed: open for another cooldown. */
  | { kind: 'reopened' }
  /** The request let through after the cooldown succeeded. */
  | { kind: 'closed' };

/**
 * One target's circuit: its outcomes over the last `cooldownMs`, and whether it is open. Once its cooldown has passed
 * it is half-open: one request at a time is let through to test the target (the others keep skipping it), and that
 * request's outcome closes it or opens it again. (Portkey's closes at once: every request in flight would then pay for
 * a target that still hangs until enough of them timed out.)
 */
export class Circuit {
  /** Per slice of the window: requests and failures counted, and which slice of time it holds (its number). */
  private readonly requests = zeros();
  private readonly failures = zeros();
  private readonly slices = zeros().fill(-Infinity);
  private readonly sliceMs: number;
  /** When the open circuit's cooldown ends (`performance.now()`); 0 while closed. Past it: half-open. */
  private openUntil = 0;
  /** Half-open: a request testing the target is under way. */
  private probing = false;

  constructor(
    readonly policy: CircuitPolicy,
    /** The target's path in the options (`config.targets[0]`), for warnings. */
    readonly name: string,
  ) {
    this.sliceMs = policy.cooldownMs / SLICES;
  }

  /** Whether to skip it now: open, or half-open with a request already testing it. */
  isOpen(now: number): boolean {
    return this.openUntil !== 0 && (now < this.openUntil || this.probing);
  }

  /**
   * Called as a request goes to the target: true when that request is the one to test it (half-open, none under
   * way); give that to `record` or `release`.
   */
  enter(now: number): boolean {
    if (this.openUntil === 0 || now < this.openUntil || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** A test request that ended without an outcome of the target's (aborted, or no upstream called): the next may test. */
  release(probe: boolean): void {
    if (probe) this.probing = false;
  }

  /** Whole ms until its cooldown ends (0 once it has, or while closed). */
  closesInMs(now: number): number {
    return this.openUntil === 0 ? 0 : Math.max(0, Math.ceil(this.openUntil - now));
  }

  /**
   * Counts an outcome over the last `cooldownMs`; returns how it changed the circuit, if it did. `probe`: what
   * `enter` returned for this request. Other outcomes that come while the circuit is not closed (a request under way
   * when it opened, or one that went to it while open, every target being open) are not counted.
   */
  record(failed: boolean, now: number, probe: boolean): CircuitChange | null {
    if (probe) {
      this.probing = false;
      if (failed) {
        this.openUntil = now + this.policy.cooldownMs;
        return { kind: 'reopened' };
      }
      this.openUntil = 0;
      // Counted afresh: what opened it is not held against the target now that it answers again.
      this.slices.fill(-Infinity);
      return { kind: 'closed' };
    }
    if (this.openUntil !== 0) return null;
    const current = Math.floor(now / this.sliceMs);
    const at = current % SLICES;
    if (this.slices[at] !== current) {
      this.slices[at] = current;
      this.requests[at] = 0;
      this.failures[at] = 0;
    }
    this.requests[at]!++;
    if (failed) this.failures[at]!++;
    else if (this.policy.failurePercentage === null) return null;
    let requests = 0;
    let failures = 0;
    for (let s = 0; s < SLICES; s++) {
      if (this.slices[s]! <= current - SLICES) continue;
      requests += this.requests[s]!;
      failures += this.failures[s]!;
    }
    const { failureThreshold, failurePercentage, minimumRequests } = this.policy;
    const byCount = failureThreshold !== null && failures >= failureThreshold;
    const byRate = failurePercentage !== null && requests >= minimumRequests && (failures / requests) * 100 >= failurePercentage;
    if (!byCount && !byRate) return null;
    this.openUntil = now + this.policy.cooldownMs;
    return { kind: 'opened', failures, requests };
  }

  /**
   * Whether an outcome counts as a failure: a status of `failureStatusCodes` (default: 5xx), or no answer (null). A
   * timeout is a 408, as for `retry`, when the codes are listed: a caller's long answer is not the target's failure
   * unless the list says so. Unlisted, the default counts it: a hung target is the outage a breaker is for.
   */
  isFailure(status: number | null, timedOut = false): boolean {
    const codes = this.policy.failureStatusCodes;
    if (timedOut) return codes === null || codes.has(408);
    if (status === null) return true;
    return codes ? codes.has(status) : status >= 500;
  }
}

function zeros(): number[] {
  return new Array<number>(SLICES).fill(0);
}
