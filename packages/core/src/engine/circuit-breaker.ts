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
  /** How long an open circuit stays open; also the window over which outcomes are counted (its last 0.9-1.0). */
  cooldownMs: number;
  /** Statuses that count as failures; null: every status >= 500. */
  failureStatusCodes: ReadonlySet<number> | null;
}

/** Portkey's floor for `cooldown_interval`: a shorter one counts as this. */
export const MIN_COOLDOWN_MS = 30_000;
/** Outcomes are counted in this many slices of the window, the oldest dropped as time moves on. */
const SLICES = 10;

interface Circuit {
  /** Per slice of the window: requests and failures counted, and which slice of time it holds (its number). */
  requests: number[];
  failures: number[];
  slice: number[];
  /** When an open circuit closes (`performance.now()`); 0 while closed. */
  openUntil: number;
}

/** What opened a circuit, for the warning that says so. */
export interface CircuitOpened {
  failures: number;
  requests: number;
}

export class CircuitBreaker {
  private readonly circuits: Circuit[];
  private readonly sliceMs: number;
  private open = 0;

  constructor(
    readonly policy: CircuitPolicy,
    size: number,
  ) {
    this.sliceMs = policy.cooldownMs / SLICES;
    this.circuits = Array.from({ length: size }, () => ({ requests: zeros(), failures: zeros(), slice: zeros().fill(-Infinity), openUntil: 0 }));
  }

  /**
   * Which targets are open now, or null when none is. A circuit whose cooldown has passed closes here, its counts
   * reset.
   */
  skipped(now: number): boolean[] | null {
    if (this.open === 0) return null;
    let skipped: boolean[] | null = null;
    for (let i = 0; i < this.circuits.length; i++) {
      if (this.isOpen(i, now)) (skipped ??= new Array<boolean>(this.circuits.length).fill(false))[i] = true;
    }
    return skipped;
  }

  /** Whether target `i`'s circuit is open now (one whose cooldown has passed closes here). */
  isOpen(i: number, now: number): boolean {
    const circuit = this.circuits[i]!;
    if (circuit.openUntil === 0) return false;
    if (now < circuit.openUntil) return true;
    this.close(circuit);
    return false;
  }

  /** Whole ms until target `i`'s circuit closes (0 if it is closed). */
  closesInMs(i: number, now: number): number {
    const { openUntil } = this.circuits[i]!;
    return openUntil === 0 ? 0 : Math.max(0, Math.ceil(openUntil - now));
  }

  /**
   * Counts target `i`'s outcome over the last `cooldownMs`; returns what opened its circuit if this one did. The
   * outcome of a request that was under way when the circuit opened, or that used it while open (every target was
   * open), is not counted.
   */
  record(i: number, failed: boolean, now: number): CircuitOpened | null {
    if (this.isOpen(i, now)) return null;
    const circuit = this.circuits[i]!;
    const current = Math.floor(now / this.sliceMs);
    const at = current % SLICES;
    if (circuit.slice[at] !== current) {
      circuit.slice[at] = current;
      circuit.requests[at] = 0;
      circuit.failures[at] = 0;
    }
    circuit.requests[at]!++;
    if (failed) circuit.failures[at]!++;
    else if (this.policy.failurePercentage === null) return null;
    let requests = 0;
    let failures = 0;
    for (let s = 0; s < SLICES; s++) {
      if (circuit.slice[s]! <= current - SLICES) continue;
      requests += circuit.requests[s]!;
      failures += circuit.failures[s]!;
    }
    const { failureThreshold, failurePercentage, minimumRequests } = this.policy;
    const byCount = failureThreshold !== null && failures >= failureThreshold;
    const byRate = failurePercentage !== null && requests >= minimumRequests && (failures / requests) * 100 >= failurePercentage;
    if (!byCount && !byRate) return null;
    circuit.openUntil = now + this.policy.cooldownMs;
    this.open++;
    return { failures, requests };
  }

  /** Whether an outcome counts as a failure: a status of `failureStatusCodes` (default: 5xx), or no answer (null). */
  isFailure(status: number | null): boolean {
    if (status === null) return true;
    return this.policy.failureStatusCodes ? this.policy.failureStatusCodes.has(status) : status >= 500;
  }

  private close(circuit: Circuit): void {
    circuit.openUntil = 0;
    this.open--;
    // Counted afresh: what opened it is not held against the target once it is tried again.
    circuit.slice.fill(-Infinity);
  }
}

function zeros(): number[] {
  return new Array<number>(SLICES).fill(0);
}
