// How a rate becomes BullMQ limiter windows, the pacer's spacing and a number of requests in flight.
import { DEFAULT_DISCOVERY } from './discovery.js';

/** Share of the rate the pacer spaces requests for: requests leave a few ms after their slot, and against an API
 *  that counts over a sliding second that jitter alone would sometimes make 101 out of 100. */
export const RATE_HEADROOM = DEFAULT_DISCOVERY.headroom;
/** Narrowest limiter window: below this BullMQ's own round trips would blur the spacing. */
const MIN_WINDOW_MS = 20;

/**
 * BullMQ's limiter allows `max` jobs per `duration` window. Short windows spread the requests evenly over each
 * second instead of sending a second's worth at once. The window is rounded up, never down, so the effective
 * rate stays under the rate; `max` grows until that rounding costs under 1% (100/s: 5 per 51 ms). It is the
 * queue-wide cap; the pacer (pacer.ts), slightly slower (RATE_HEADROOM), sets the actual even spacing, so the
 * limiter's windows (which drift later by each fetch's delay) never decide the pace.
 */
export function limiterFor(ratePerSecond: number): { max: number; duration: number } {
  const target = ratePerSecond;
  for (let max = 1; ; max++) {
    const duration = Math.ceil((max * 1000) / target);
    if (duration >= MIN_WINDOW_MS && (max * 1000) / duration >= target * 0.99) return { max, duration };
    if (max >= 1000) return { max, duration };
  }
}

/** In-flight requests needed so that latency does not cap the rate: rate × latency, with headroom. */
export function concurrencyFor(ratePerSecond: number, latencyMs: number, ceiling: number): number {
  return Math.max(1, Math.min(ceiling, Math.ceil(ratePerSecond * (latencyMs / 1000) * 1.5) + 1));
}
