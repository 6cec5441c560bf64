// A run's report, written the same way by every command and session: in its directory, a stopped run marked
// with the fatal reason, and the exit code that follows from it.
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { ExitCode } from '../exitCodes.js';
import type { RunLedger } from '../ledger/runLedger.js';
import type { Logger } from '../logger.js';
import type { FatalReason } from '../queue/fatalStop.js';
import type { Summary } from '../reports/summary.js';
import { writeReport, type ReportFiles } from '../reports/writeReport.js';
import { readCanary } from './canary.js';
import { conflictTokens } from './conflictTokens.js';
import type { Context } from './context.js';
import { exitCodeOf } from './exitCode.js';
import { openRunSources } from './runSources.js';

export function reportDirOf(config: Config, runId: string, outDir?: string): string {
  return outDir ?? join(config.reportDir, runId);
}

export interface RunReport {
  summary: Summary;
  files: ReportFiles;
  exitCode: ExitCode;
}

/**
 * `fatal`: the reason the caller already knows (null: none); read from Redis when not given. `log`: where a source
 * whose failed rows (or superseded rows' users) cannot be read again is warned about (also in summary.json's
 * `warnings`); default stderr.
 */
export async function writeRunReport(ctx: Context, ledger: RunLedger, opts: { dir?: string; fatal?: FatalReason | null; log?: Logger } = {}): Promise<RunReport> {
  const fatal = opts.fatal === undefined ? await ctx.fatal.haltedBy(ledger.runId, (await ledger.state()).rows_pending) : (opts.fatal ?? undefined);
  const canary = await readCanary(ledger);
  const runSources = await openRunSources(ctx, ledger.runId);
  try {
    const { summary, files } = await writeReport(ledger, {
      dir: opts.dir ?? reportDirOf(ctx.config, ledger.runId),
      conflictTokens: await conflictTokens(ledger),
      sources: runSources.sources,
      onWarning: (message) => (opts.log ? opts.log.warn(message) : process.stderr.write(`warning: ${message}\n`)),
      ...(fatal ? { fatal } : {}),
      ...(canary ? { canary } : {}),
    });
    return { summary, files, exitCode: exitCodeOf(summary) };
  } finally {
    runSources.close();
  }
}
