// Retry delays for transient failures of a row: the backoff of ../revenuecat/retryAfter.ts, never shorter than
// what the API asked for. TransientFailure carries that ask from the processor to BullMQ's backoff strategy.
import { backoffDelay, type BackoffSettings } from '../revenuecat/retryAfter.js';

export class TransientFailure extends Error {
  override name = 'TransientFailure';
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

/** Delay before attempt `attemptsMade + 1`, given the error of the attempt that just failed. */
export function retryDelay(attemptsMade: number, err: unknown, settings: BackoffSettings): number {
  const asked = err instanceof TransientFailure ? (err.retryAfterMs ?? 0) : 0;
  return Math.max(backoffDelay(attemptsMade, settings), asked);
}
