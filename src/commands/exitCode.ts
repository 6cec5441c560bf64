// A run's exit code follows from its summary, whichever command produced it.
import { EXIT, type ExitCode } from '../exitCodes.js';
import type { Summary } from '../reports/summary.js';

export function exitCodeOf(summary: Summary): ExitCode {
  if (summary.status === 'stopped') return EXIT.FATAL;
  if (summary.status !== 'complete') return EXIT.INCOMPLETE;
  const verifyMismatched = summary.verify?.mismatched ?? 0;
  return summary.rows_failed + summary.rows_rejected + summary.rows_mismatched + verifyMismatched === 0 ? EXIT.OK : EXIT.ROWS_FAILED;
}
