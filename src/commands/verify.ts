// `verify`: a second pass after a run. Reads each migrated user's current state (API v2, without side effects;
// v1 only when asked) and compares it with what the import answered, what the rows expected and, for App Store
// rows, what their receipts say (read again from the run's sources). The result
// goes into the run's report: mismatches.csv, summary.json's `verify`, report.html.
import { ConfigError, type Config } from '../config.js';
import { exitCodeFor } from '../exitCodes.js';
import type { Logger } from '../logger.js';
import { checkOptions, runRefRule } from '../options.js';
import { CustomerReader } from '../revenuecat/customerReader.js';
import { openContext } from '../session/context.js';
import { withResources } from '../session/resources.js';
import { openRunSources } from '../session/runSources.js';
import { writeRunReport, type RunReport } from '../session/runReport.js';
import { verifyRun, type VerifyResult } from '../verify/verifyRun.js';

export interface VerifyCommandOptions {
  config: Config;
  logger: Logger;
  runId: string;
  /** read through v1 GET /subscribers instead: it creates subscribers that do not exist */
  v1?: boolean;
  outDir?: string;
  onProgress?: (done: number, total: number) => void;
}

/** The key verify reads with, or a ConfigError that says which one to set. */
function readKey(config: Config, api: 'v1' | 'v2'): string {
  const key = api === 'v2' ? config.secretKey : (config.secretKey ?? config.apiKey);
  if (!key) {
    throw new ConfigError(
      api === 'v2'
        ? 'verify reads through API v2: set REVENUECAT_SECRET_KEY to a v2 secret key (sk_…) with read access to customers, and REVENUECAT_PROJECT_ID'
        : 'verify --v1 needs REVENUECAT_SECRET_KEY or REVENUECAT_API_KEY',
    );
  }
  if (api === 'v2' && !key.startsWith('sk_')) throw new ConfigError('REVENUECAT_SECRET_KEY must be a secret key (sk_…): API v2 does not accept public SDK keys');
  if (api === 'v2' && !config.projectId) throw new ConfigError('verify reads through API v2: set REVENUECAT_PROJECT_ID (the project id in the RevenueCat dashboard, proj…)');
  return key;
}

/** The report's exit code, or 3 when the pass stopped early (a 401/403, an unknown project). */
export async function verifyMigration(opts: VerifyCommandOptions): Promise<RunReport & { result: VerifyResult }> {
  checkOptions(runRefRule, opts, 'verifyMigration');
  const { config, runId } = opts;
  const api = opts.v1 ? 'v1' : 'v2';
  const key = readKey(config, api);
  return withResources(async (resources) => {
    const ctx = await openContext(config, resources);
    const reader = resources.add(
      'customer reader',
      new CustomerReader({
        baseUrl: config.apiUrl,
        secretKey: key,
        ...(config.projectId ? { projectId: config.projectId } : {}),
        api,
        timeoutMs: config.requestTimeoutMs,
        ratePerMinute: config.verifyRatePerMinute,
      }),
      (r) => r.close(),
    );
    const ledger = await ctx.existingLedger(runId);
    const sources = resources.add('run sources', await openRunSources(ctx, runId), (s) => s.close());
    const log = opts.logger.child({ run: runId });
    log.info({ api }, 'verify started');
    const result = await verifyRun({
      ledger,
      reader,
      concurrency: config.verifyConcurrency,
      toleranceMs: config.expiryToleranceMs,
      sources: sources.sources,
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    const receipts = result.receipts;
    if (receipts && receipts.unavailable > 0) {
      log.warn(
        { rows: receipts.unavailable },
        `verify: ${receipts.unavailable} App Store row(s) not compared with their receipts (their other checks were done): ${receipts.unavailableReason ?? 'not read again'}`,
      );
    }
    await ledger.saveVerify(
      {
        at: new Date().toISOString(),
        api,
        checked: result.checked,
        users: result.users,
        matched: result.matched,
        mismatched: result.checked - result.matched,
        ...(result.aborted ? { aborted: result.aborted.message } : {}),
        ...(receipts
          ? {
              receipts: {
                read: receipts.read,
                unread: receipts.unread,
                unavailable: receipts.unavailable,
                ...(receipts.unavailableReason !== undefined ? { unavailable_reason: receipts.unavailableReason } : {}),
              },
            }
          : {}),
      },
      result.mismatches,
    );
    if (result.aborted) log.error({ reason: result.aborted.reason }, `verify stopped early: ${result.aborted.message}`);
    const report = await writeRunReport(ctx, ledger, { log, ...(opts.outDir ? { dir: opts.outDir } : {}) });
    return { ...report, result, exitCode: result.aborted ? exitCodeFor({ stopped: true }) : report.exitCode };
  });
}
