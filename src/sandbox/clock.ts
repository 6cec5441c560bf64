// The sandbox's clock for rate limits, latency windows and the stats timeline: monotonic (performance.now) but
// expressed as epoch milliseconds, so a benchmark can line the sandbox's timeline up with its own. It is not
// the `now` option, which tests freeze for the dates in responses and which would freeze the windows too.
import { performance } from 'node:perf_hooks';

export type Clock = () => number;

export const monotonicEpochMs: Clock = () => performance.timeOrigin + performance.now();
