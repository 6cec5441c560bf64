// When to try a request to the API again: what the API asked for (a `backoff_ms` in the error body, else the
// Retry-After header) and, when it asked for nothing, exponential backoff with jitter. Shared by the receipts
// client and classification, the customer reader, and the workers' retry strategy (../workers/backoff.ts).

/** Longest wait this API plausibly asks for in seconds: a Retry-After above it is not a wait in seconds. */
export const LONGEST_SECONDS_WAIT_MS = 10 * 60_000;
/**
 * Default cap of any wait the API asks for (config `maxRetryAfterMs`): two minutes, twice the longest window a
 * per-minute budget can ask to wait out, so that an exact millisecond wait under 10 minutes' worth of digits
 * (`Retry-After: 347`, which this rule must read as seconds) pauses a run for two minutes at most.
 */
export const DEFAULT_MAX_RETRY_AFTER_MS = 120_000;

/** How a Retry-After was read: as the spec says, as milliseconds (RevenueCat's v1 reference until mid-2024), or capped. */
export type RetryAfterReading = 'seconds' | 'date' | 'milliseconds' | 'capped';

export interface RetryAfter {
  ms: number;
  reading: RetryAfterReading;
  /** the header's value as sent (trimmed, at most 40 characters), for the one warning line a reinterpretation gives */
  raw: string;
}

/**
 * Retry-After: delta-seconds (integer or decimal, per the current spec) or an HTTP date; negative/garbage →
 * undefined. RevenueCat's API reference gave it in milliseconds until mid-2024, so a value that cannot be a wait
 * in seconds for this API (longer than 10 minutes) is read as milliseconds when that is a plausible wait (at most
 * `maxMs`), and anything still longer is capped at `maxMs`: a `Retry-After: 1000` meant as one second must never
 * pause a run for 1,000 seconds.
 */
export function readRetryAfter(value: string | undefined, now: number = Date.now(), maxMs: number = DEFAULT_MAX_RETRY_AFTER_MS): RetryAfter | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  const raw = v.slice(0, 40);
  if (/^\d+(\.\d+)?$/.test(v)) {
    const n = Number(v);
    const asSeconds = Math.round(n * 1000);
    if (asSeconds <= Math.min(LONGEST_SECONDS_WAIT_MS, maxMs)) return { ms: asSeconds, reading: 'seconds', raw };
    // Not a wait in seconds for this API: milliseconds, when that reads as a wait (a whole number, within the cap).
    if (asSeconds > LONGEST_SECONDS_WAIT_MS && Number.isInteger(n) && n <= maxMs) return { ms: n, reading: 'milliseconds', raw };
    return { ms: maxMs, reading: 'capped', raw };
  }
  if (/^[+-]?\d/.test(v)) return undefined; // negative or malformed number: not a date either
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  const ms = Math.max(0, at - now);
  return ms > maxMs ? { ms: maxMs, reading: 'capped', raw } : { ms, reading: 'date', raw };
}

/** The wait a Retry-After asks for, in ms (readRetryAfter's rules); negative/garbage → undefined. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now(), maxMs: number = DEFAULT_MAX_RETRY_AFTER_MS): number | undefined {
  return readRetryAfter(value, now, maxMs)?.ms;
}

/** The one warning line a reinterpreted Retry-After gives, naming the header's value; undefined when read as the spec says. */
export function describeRetryAfter(r: RetryAfter, maxMs: number = DEFAULT_MAX_RETRY_AFTER_MS): string | undefined {
  if (r.reading === 'milliseconds') return `Retry-After: ${r.raw} cannot be a wait in seconds (over 10 minutes): read as ${r.raw} ms, as RevenueCat's older API reference gave it`;
  if (r.reading === 'capped') return `Retry-After: ${r.raw} asks for a wait longer than maxRetryAfterMs (${maxMs} ms): waiting ${maxMs} ms instead`;
  return undefined;
}

/** `backoff_ms` from a (v2-style) error body, when it is a non-negative finite number. */
export function bodyBackoffMs(body: unknown): number | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = (body as { backoff_ms?: unknown }).backoff_ms;
  return typeof b === 'number' && Number.isFinite(b) && b >= 0 ? Math.round(b) : undefined;
}

export interface BackoffSettings {
  baseMs: number;
  maxMs: number;
  random?: () => number;
}

/** Delay before attempt `attemptsMade + 1`: exponential from `baseMs`, capped at `maxMs`, with jitter. */
export function backoffDelay(attemptsMade: number, { baseMs, maxMs, random = Math.random }: BackoffSettings): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attemptsMade - 1));
  // Half fixed, half random: spreads retries of requests that failed together without ever retrying at once.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
