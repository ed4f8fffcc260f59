/**
 * Portkey's circuit breaker (`strategy.cb_config`): a strategy stops sending requests to a target that keeps failing,
 * for `cooldown_interval`, so that during an outage a request does not pay for that target's failed attempt first.
 * State lives in the process, per strategy of a routing config, one circuit per target; a new Gateway starts closed.
 */

export interface CircuitPolicy {
  /** Failures that open a circuit; null: only the rate opens it. */
  failureThreshold: number | null;
  /** Failure rate in percent that opens a circuit, once `minimumRequests` were counted; null: only the count. */
  failurePercentage: number | null;
  minimumRequests: number;
  /** How long an open circuit stays open; also how long a run of failures is counted from its first failure. */
  cooldownMs: number;
  /** Statuses that count as failures; null: every status >= 500. */
  failureStatusCodes: ReadonlySet<number> | null;
}

/** Portkey's floor for `cooldown_interval`: a shorter one counts as this. */
export const MIN_COOLDOWN_MS = 30_000;

interface Circuit {
  requests: number;
  failures: number;
  /** When the first failure of the run being counted happened (`performance.now()`), or null: no failure counted. */
  since: number | null;
  /** When an open circuit closes; 0 while closed. */
  openUntil: number;
}

/** What opened a circuit, for the warning that says so. */
export interface CircuitOpened {
  failures: number;
  requests: number;
  /** Over how long, in ms. */
  overMs: number;
}

export class CircuitBreaker {
  private readonly circuits: Circuit[];
  private open = 0;

  constructor(
    readonly policy: CircuitPolicy,
    size: number,
  ) {
    this.circuits = Array.from({ length: size }, () => ({ requests: 0, failures: 0, since: null, openUntil: 0 }));
  }

  /**
   * Which targets to skip now: null when none is open, and when all are (then, as in Portkey, the breaker is
   * bypassed and every target is used). A circuit whose cooldown has passed closes here, its counts reset.
   */
  skipped(now: number): boolean[] | null {
    if (this.open === 0) return null;
    let skipped: boolean[] | null = null;
    let healthy = false;
    this.circuits.forEach((circuit, i) => {
      if (circuit.openUntil !== 0 && now >= circuit.openUntil) this.close(circuit);
      if (circuit.openUntil === 0) {
        healthy = true;
        return;
      }
      (skipped ??= new Array<boolean>(this.circuits.length).fill(false))[i] = true;
    });
    return healthy ? skipped : null;
  }

  /** Whole ms until target `i`'s circuit closes (0 if it is closed). */
  closesInMs(i: number, now: number): number {
    const { openUntil } = this.circuits[i]!;
    return openUntil === 0 ? 0 : Math.max(0, Math.ceil(openUntil - now));
  }

  /** Counts target `i`'s outcome; returns what opened its circuit if this one did. */
  record(i: number, failed: boolean, now: number): CircuitOpened | null {
    const circuit = this.circuits[i]!;
    if (circuit.openUntil !== 0) {
      // Its cooldown has passed (no request asked since): closed. Still open: a request that was under way when
      // it opened, or one that bypassed it (every target open); its outcome is not counted.
      if (now < circuit.openUntil) return null;
      this.close(circuit);
    }
    // A run of failures is counted for one cooldown from its first failure: old, scattered failures do not add up.
    if (circuit.since !== null && now - circuit.since >= this.policy.cooldownMs) reset(circuit);
    // Successes count toward the rate once a failure started a run.
    if (!failed && circuit.since === null) return null;
    circuit.requests++;
    if (failed) {
      circuit.failures++;
      circuit.since ??= now;
    }
    const { failureThreshold, failurePercentage, minimumRequests } = this.policy;
    const byCount = failureThreshold !== null && circuit.failures >= failureThreshold;
    const byRate = failurePercentage !== null && circuit.requests >= minimumRequests && (circuit.failures / circuit.requests) * 100 >= failurePercentage;
    if (!byCount && !byRate) return null;
    const opened = { failures: circuit.failures, requests: circuit.requests, overMs: now - circuit.since! };
    circuit.openUntil = now + this.policy.cooldownMs;
    this.open++;
    return opened;
  }

  /** Whether an outcome counts as a failure: a status of `failureStatusCodes` (default: 5xx), or no answer (null). */
  isFailure(status: number | null): boolean {
    if (status === null) return true;
    return this.policy.failureStatusCodes ? this.policy.failureStatusCodes.has(status) : status >= 500;
  }

  private close(circuit: Circuit): void {
    circuit.openUntil = 0;
    this.open--;
    reset(circuit);
  }
}

function reset(circuit: Circuit): void {
  circuit.requests = 0;
  circuit.failures = 0;
  circuit.since = null;
}
