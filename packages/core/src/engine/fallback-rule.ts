/**
 * The fallback decision (DESIGN.md "Behaviour"): move to the next target when the upstream's status is in
 * `on_status_codes` (absent: any status >= 400), or when there was no response at all (connection refused or
 * reset, timeout, a model the target has no deployment for). Anything else is the answer, returned as it is.
 */
export function triggersFallback(status: number | null, onStatusCodes: ReadonlySet<number> | null): boolean {
  if (status === null) return true;
  return onStatusCodes ? onStatusCodes.has(status) : status >= 400;
}
