// Progress as log lines, for runs nobody watches at a terminal (CI, a container): at most one line per
// interval, whatever the rate of updates.
import type { IngestProgress } from '../ingest/ingester.js';
import type { Logger } from '../logger.js';
import { briefRate, type RunProgress } from './rateProgress.js';

/** How often a run or an ingest logs a `progress` line when no progress bar is shown. */
export const PROGRESS_LOG_MS = 5000;

/** A function that logs what it is given, at most once per `everyMs` (0: never). */
export function throttledLog<T>(everyMs: number, write: (value: T) => void, now: () => number = Date.now): (value: T) => void {
  let last = now();
  return (value) => {
    if (everyMs <= 0 || now() - last < everyMs) return;
    last = now();
    write(value);
  };
}

export function runProgressLog(log: Logger, everyMs: number): (s: RunProgress) => void {
  return throttledLog(everyMs, (s: RunProgress) => {
    // the learned request rate, e.g. "48.5/s learned" (rateProgress.ts)
    const rate = briefRate(s.rates);
    // the App Store Server API lookups' rate, for a run with rows given by a transaction id
    const lookups = briefRate(s.lookupRate ? [s.lookupRate] : undefined);
    log.info(
      {
        read: s.rows_read,
        queued: s.rows_queued,
        succeeded: s.rows_succeeded,
        failed: s.rows_failed,
        rejected: s.rows_rejected,
        requests: s.requests_sent,
        ...(rate ? { rate } : {}),
        ...(lookups ? { lookupRate: lookups } : {}),
      },
      'progress',
    );
  });
}

export function ingestProgressLog(log: Logger, everyMs: number): (p: IngestProgress) => void {
  return throttledLog(everyMs, (p: IngestProgress) => log.info({ source: p.source, line: p.line, read: p.rowsRead }, 'progress'));
}
