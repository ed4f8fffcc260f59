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

/** What opened a circuit, for the warning that says so. */
export interface CircuitOpened {
  failures: number;
  requests: number;
}

/** One target's circuit: its outcomes over the last `cooldownMs`, and whether it is open. */
export class Circuit {
  /** Per slice of the window: requests and failures counted, and which slice of time it holds (its number). */
  private readonly requests = zeros();
  private readonly failures = zeros();
  private readonly slices = zeros().fill(-Infinity);
  private readonly sliceMs: number;
  /** When the open circuit closes (`performance.now()`); 0 while closed. */
  private openUntil = 0;

  constructor(
    readonly policy: CircuitPolicy,
    /** The target's path in the options (`config.targets[0]`), for warnings. */
    readonly name: string,
  ) {
    this.sliceMs = policy.cooldownMs / SLICES;
  }

  /** Whether it is open now (one whose cooldown has passed closes here, its counts reset). */
  isOpen(now: number): boolean {
    if (this.openUntil === 0) return false;
    if (now < this.openUntil) return true;
    this.openUntil = 0;
    // Counted afresh: what opened it is not held against the target once it is tried again.
    this.slices.fill(-Infinity);
    return false;
  }

  /** Whole ms until it closes (0 if it is closed). */
  closesInMs(now: number): number {
    return this.openUntil === 0 ? 0 : Math.max(0, Math.ceil(this.openUntil - now));
  }

  /**
   * Counts an outcome over the last `cooldownMs`; returns what opened the circuit if this one did. The outcome of a
   * request that was under way when it opened, or that used it while open (every target was open), is not counted.
   */
  record(failed: boolean, now: number): CircuitOpened | null {
    if (this.isOpen(now)) return null;
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
    return { failures, requests };
  }

  /** Whether an outcome counts as a failure: a status of `failureStatusCodes` (default: 5xx), or no answer (null). */
  isFailure(status: number | null): boolean {
    if (status === null) return true;
    return this.policy.failureStatusCodes ? this.policy.failureStatusCodes.has(status) : status >= 500;
  }
}

function zeros(): number[] {
  return new Array<number>(SLICES).fill(0);
}
