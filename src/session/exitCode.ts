// A run's exit code follows from its summary, whichever command or firing produced it.
import { exitCodeFor, type ExitCode } from '../exitCodes.js';
import type { Summary } from '../reports/summary.js';

export function exitCodeOf(summary: Summary): ExitCode {
  return exitCodeFor({
    stopped: summary.status === 'stopped',
    // a canary whose rows all have their outcome is judged on them: 0 when they all succeeded (docs/before-sending.md: Canary runs)
    incomplete: summary.status !== 'complete' && summary.status !== 'partial',
    // held conflicts too: a row someone must look at before it is sent
    problems: summary.rows_failed + summary.rows_rejected + summary.rows_held + summary.rows_mismatched + (summary.verify?.mismatched ?? 0),
  });
}
