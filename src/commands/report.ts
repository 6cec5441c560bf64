// `report`: writes a run's report from its ledger at any time (a run still going gets a partial report).
import type { Config } from '../config.js';
import { checkOptions, runRefRule } from '../options.js';
import { withContext } from '../session/context.js';
import { writeRunReport, type RunReport } from '../session/runReport.js';

export async function reportRun(opts: { config: Config; runId: string; outDir?: string }): Promise<RunReport> {
  checkOptions(runRefRule, opts, 'reportRun');
  return withContext(opts.config, async (ctx) => writeRunReport(ctx, await ctx.existingLedger(opts.runId), opts.outDir ? { dir: opts.outDir } : {}));
}
