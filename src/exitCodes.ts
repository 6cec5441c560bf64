// Exit codes of every command, documented in the README and docs/reports.md. A script driving the tool can branch on them.
export const EXIT = {
  /** every row read succeeded (duplicates of a succeeded row count as covered) */
  OK: 0,
  /** the run finished, but some rows failed or were rejected: see failed.csv and rejected.csv */
  ROWS_FAILED: 1,
  /** usage or configuration error: nothing was sent */
  CONFIG: 2,
  /** stopped by a fatal API answer (bad key, bad store credentials): unsent rows stay queued; fix and run again */
  FATAL: 3,
  /** interrupted (SIGINT/SIGTERM) or the run is still in progress: run the same command again to continue */
  INCOMPLETE: 4,
  /** an unexpected error (a bug or a lost Redis connection): the message says where; the run can be continued */
  INTERNAL: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** What every command's ending comes down to; `exitCodeFor` is the one policy that turns it into a code. */
export interface Verdict {
  /** a fatal API answer stopped the work (the queue is paused) */
  stopped?: boolean;
  /** interrupted, or not every row has an outcome yet */
  incomplete?: boolean;
  /** rows that failed, were rejected, or did not come out as expected */
  problems?: number;
}

export function exitCodeFor(v: Verdict): ExitCode {
  if (v.stopped) return EXIT.FATAL;
  if (v.incomplete) return EXIT.INCOMPLETE;
  return (v.problems ?? 0) > 0 ? EXIT.ROWS_FAILED : EXIT.OK;
}
