// `report`: writes a run's report from its ledger at any time (a run still going gets a partial report).
import { join } from 'node:path';
import { checkRunId, ConfigError, type Config } from '../config.js';
import type { ExitCode } from '../exitCodes.js';
import type { Summary } from '../reports/summary.js';
import { writeReport, type ReportFiles } from '../reports/writeReport.js';
import { openContext } from './context.js';
import { exitCodeOf } from './exitCode.js';

export async function reportRun(opts: { config: Config; runId: string; outDir?: string }): Promise<{ summary: Summary; files: ReportFiles; exitCode: ExitCode }> {
  const runId = checkRunId(opts.runId);
  const ctx = await openContext(opts.config);
  try {
    const ledger = ctx.ledger(runId);
    if (!(await ledger.exists())) throw new ConfigError(`no run "${runId}" in Redis at prefix "${opts.config.prefix}": check --run-id and REDIS_URL`);
    const { summary, files } = await writeReport(ledger, { dir: opts.outDir ?? join(opts.config.reportDir, runId), fatal: await ctx.fatal.reason() });
    return { summary, files, exitCode: exitCodeOf(summary) };
  } finally {
    await ctx.close();
  }
}
