// When to try a request to the API again: what the API asked for (a `backoff_ms` in the error body, else the
// Retry-After header) and, when it asked for nothing, exponential backoff with jitter. Shared by the receipts
// client and classification, the customer reader, and the workers' retry strategy (../workers/backoff.ts).

/** Retry-After: delta-seconds (integer or decimal, per the current spec) or an HTTP date; negative/garbage → undefined. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  if (/^[+-]?\d/.test(v)) return undefined; // negative or malformed number: not a date either
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
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
