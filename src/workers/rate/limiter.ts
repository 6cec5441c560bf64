// How a rate becomes BullMQ limiter windows, the pacer's spacing and a number of requests in flight.
import { DEFAULT_DISCOVERY } from './discovery.js';

export { paceAim } from './discovery.js';

/** Share of the rate the pacer spaces requests for: requests leave a few ms after their slot, and against an API
 *  that counts over a sliding second that jitter alone would sometimes make 101 out of 100. */
export const RATE_HEADROOM = DEFAULT_DISCOVERY.headroom;
/** Lateness (ms) the pacer's slot grid absorbs before it moves (includes/paceSchedule.lua): one slot's time, at most 100 ms. */
export function paceLagMs(intervalMs: number): number {
  return Math.min(intervalMs, 100);
}

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

/**
 * BullMQ's limiter for the queue at a rate: a little above it, so that it never holds back a job the pacer has a
 * slot for. Its windows drift later by each fetch's delay, so at the rate itself it can hand out fewer jobs a
 * second than the pacer plans to send, and a slot with no job waiting for it is lost. The pacer spaces the
 * requests; the limiter only bounds how many jobs wait for a slot.
 */
export function queueLimiterFor(ratePerSecond: number): { max: number; duration: number } {
  return limiterFor(ratePerSecond * QUEUE_LIMITER_SLACK);
}
const QUEUE_LIMITER_SLACK = 1.2;

/** In-flight requests needed so that latency does not cap the rate: rate × latency, with headroom. */
export function concurrencyFor(ratePerSecond: number, latencyMs: number, ceiling: number): number {
  return Math.max(1, Math.min(ceiling, Math.ceil(ratePerSecond * (latencyMs / 1000) * 1.5) + 1));
}
