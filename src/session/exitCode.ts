// A run's exit code follows from its summary, whichever command or firing produced it.
import { exitCodeFor, type ExitCode } from '../exitCodes.js';
import type { Summary } from '../reports/summary.js';

export function exitCodeOf(summary: Summary): ExitCode {
  return exitCodeFor({
    stopped: summary.status === 'stopped',
    incomplete: summary.status !== 'complete',
    // held conflicts too: a row someone must look at before it is sent
    problems: summary.rows_failed + summary.rows_rejected + summary.rows_held + summary.rows_mismatched + (summary.verify?.mismatched ?? 0),
  });
}
