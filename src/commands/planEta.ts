// How long a plan's rows would take to send: one request per row (retries aside) at the rate the workers would
// keep. That rate is the one they learned (the shared rate in Redis, workers/rate/sharedRate.ts) capped by
// --rate, else --rate, else unknown: no --rate means the limit is discovered, so only a range can be given.
import type { RateView } from '../workers/rate/sharedRate.js';

/** The range quoted when nothing is known: RevenueCat's sample script's pace, and the commonly quoted v1 limit. */
export const UNKNOWN_RATE_RANGE = { low: 1, high: 20 } as const;

export interface PlanEta {
  /** where the rate comes from */
  rate_source: 'learned' | 'configured' | 'unknown';
  /** requests per second the workers would send at (the pacer's share of the rate); absent when unknown */
  rate_per_second?: number;
  /** seconds to send every row; absent when the rate is unknown */
  seconds?: number;
  /** when the rate is unknown: seconds at the high and the low end of UNKNOWN_RATE_RANGE */
  range_seconds?: [number, number];
  /** the estimate in words */
  text: string;
}

export function planEta(rows: number, opts: { learned?: RateView; configured?: number; headroom: number }): PlanEta {
  const limit = opts.learned ? Math.min(opts.learned.rate, opts.configured ?? Infinity) : opts.configured;
  if (limit === undefined) {
    const fast = Math.ceil(rows / UNKNOWN_RATE_RANGE.high);
    const slow = Math.ceil(rows / UNKNOWN_RATE_RANGE.low);
    return {
      rate_source: 'unknown',
      range_seconds: [fast, slow],
      text: `unknown: the rate will be discovered (no --rate, none learned yet); between ${duration(fast)} at ${UNKNOWN_RATE_RANGE.high}/s and ${duration(slow)} at ${UNKNOWN_RATE_RANGE.low}/s`,
    };
  }
  const rate = limit * opts.headroom;
  const seconds = Math.ceil(rows / rate);
  const source = opts.learned ? 'learned' : 'configured';
  return { rate_source: source, rate_per_second: round(rate), seconds, text: `${duration(seconds)} at ${round(rate)} requests/s (${source})` };
}

const round = (n: number): number => Math.round(n * 100) / 100;

/** 45s, 12m30s, 3h05m, 2d04h */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}
