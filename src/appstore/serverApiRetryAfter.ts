// A 429 from the App Store Server API carries Retry-After as a UNIX time in MILLISECONDS (Apple's "Identifying
// rate limits"), not the delta-seconds of HTTP: read as seconds, 1733550000000 would be a wait of 55,000 years,
// and read as a delta in ms it would be as wrong. This reads it as the moment to wait until. Defensive where
// Apple's documentation does not reach: a 10-digit value is taken as UNIX seconds, a small one as delta-seconds
// (HTTP's own form), an HTTP date as a date; anything else is no answer (the caller's default wait applies).

/** Apple enforces its limit per hour: no Retry-After is trusted to ask for longer. */
export const MAX_APPLE_WAIT_MS = 3_600_000;

/** The UNIX time (ms) a 429 asks to wait until, or undefined when the header says nothing usable. */
export function parseAppleRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  let at: number;
  if (/^\d+(\.\d+)?$/.test(v)) {
    const n = Number(v);
    if (n >= 1e12)
      at = n; // UNIX ms (Apple's form)
    else if (n >= 1e9)
      at = n * 1000; // UNIX seconds
    else at = now + n * 1000; // delta-seconds
  } else {
    if (/^[+-]?\d/.test(v)) return undefined;
    at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
  }
  return Math.round(Math.min(Math.max(at, now), now + MAX_APPLE_WAIT_MS));
}
