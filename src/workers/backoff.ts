// Retry delays for transient failures: exponential with full jitter, never shorter than what the API asked for.
export class TransientFailure extends Error {
  override name = 'TransientFailure';
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

export interface BackoffSettings {
  baseMs: number;
  maxMs: number;
  random?: () => number;
}

/** Delay before attempt `attemptsMade + 1`, given the error of the attempt that just failed. */
export function retryDelay(attemptsMade: number, err: unknown, { baseMs, maxMs, random = Math.random }: BackoffSettings): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attemptsMade - 1));
  // Half fixed, half random: spreads retries of rows that failed together without ever retrying at once.
  const jittered = Math.round(ceiling / 2 + random() * (ceiling / 2));
  const asked = err instanceof TransientFailure ? (err.retryAfterMs ?? 0) : 0;
  return Math.max(jittered, asked);
}
