// `report`: writes a run's report from its ledger at any time (a run still going gets a partial report).
import { join } from 'node:path';
import { checkRunId, type Config } from '../config.js';
import type { ExitCode } from '../exitCodes.js';
import type { Summary } from '../reports/summary.js';
import { writeReport, type ReportFiles } from '../reports/writeReport.js';
import type { RunLedger } from '../ledger/runLedger.js';
import { openContext, type Context } from './context.js';
import { exitCodeOf } from './exitCode.js';

export async function reportRun(opts: { config: Config; runId: string; outDir?: string }): Promise<{ summary: Summary; files: ReportFiles; exitCode: ExitCode }> {
  const runId = checkRunId(opts.runId);
  const ctx = await openContext(opts.config);
  try {
    return await writeRunReport(ctx, await ctx.existingLedger(runId), opts.outDir);
  } finally {
    await ctx.close();
  }
}

/** Writes a run's report as any command does: in its directory, stopped runs marked with the fatal reason. */
export async function writeRunReport(ctx: Context, ledger: RunLedger, outDir?: string): Promise<{ summary: Summary; files: ReportFiles; exitCode: ExitCode }> {
  const fatal = await ctx.fatal.reason();
  const { summary, files } = await writeReport(ledger, { dir: outDir ?? join(ctx.config.reportDir, ledger.runId), ...(fatal ? { fatal } : {}) });
  return { summary, files, exitCode: exitCodeOf(summary) };
}
