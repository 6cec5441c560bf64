// `plan`: reads and validates the sources exactly as `run` would, and sends nothing. Every row is admitted into a
// throw-away plan ledger in Redis (ledger/planLedger.ts), so duplicates and token conflicts within the sources
// are found with bounded memory in this process, and the cross-run index says which rows an earlier run already
// migrated, which changed since (updated) and which tokens another user has. Nothing is queued, no API key is
// needed, and the plan's keys are deleted when it ends. It writes plan.json, rejected.csv and conflicts.csv.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { exitCodeFor, type ExitCode } from '../exitCodes.js';
import type { ColumnOptions } from '../ingest/columns.js';
import type { ReceiptCounts } from '../ingest/receiptSurvey.js';
import { ingest, type IngestProgress, type RowChoice, type RowSelector } from '../ingest/ingester.js';
import type { Admission } from '../ledger/runLedger.js';
import type { Logger } from '../logger.js';
import { checkOptions, planOptionsRule } from '../options.js';
import { RedisKeys } from '../redis/keys.js';
import { writeConflictsCsv, writeRejectedCsv } from '../reports/writeReport.js';
import type { Platform } from '../revenuecat/fields.js';
import { queuesRow } from '../session/canary.js';
import { ConflictTokens, conflictTokens } from '../session/conflictTokens.js';
import { openContext } from '../session/context.js';
import { ingestOptionsFrom, openSources } from '../session/ingestOptions.js';
import { newPlanId, PlanLedger, sweepStalePlans } from '../ledger/planLedger.js';

export { newPlanId };
import { withResources } from '../session/resources.js';
import type { ReceiptJobData } from '../types.js';
import { readRateState } from '../workers/rate/sharedRate.js';
import { planEta, type PlanEta } from './planEta.js';
import { appleCredentialsOf, missingCredentialsMessage } from '../appstore/serverApiCredentials.js';

export interface PlanOptions {
  config: Config;
  logger: Logger;
  sources: string[];
  /** the plan's id (its ledger's keys in Redis, its default directory); default a new one (newPlanId) */
  planId?: string;
  /** where plan.json, rejected.csv and conflicts.csv go; default <reportDir>/<plan id> */
  outDir?: string;
  columns?: ColumnOptions;
  /** count rows an earlier run migrated as rows to send (as `run --force` would send them) */
  force?: boolean;
  /** count conflicting rows as rows to send (as `run --on-conflict send` would send them) */
  onConflict?: 'hold' | 'send';
  signal?: AbortSignal;
  onProgress?: (p: IngestProgress) => void;
}

/** plan.json */
export interface Plan {
  plan_id: string;
  created_at: string;
  sources: string[];
  /** every row read, each counted once: rejected, duplicate, or admitted (to send, already migrated, conflict) */
  rows_read: number;
  rows_rejected: number;
  rows_duplicate: number;
  /** rows whose fetch token another app_user_id has, earlier in the sources or migrated by an earlier run */
  conflicts: number;
  /** of them, rows a run would hold back (all of them unless --on-conflict send) */
  conflicts_held: number;
  /** rows an earlier run migrated with the same payload: a run skips them */
  already_migrated: number;
  /** rows an earlier run migrated for the same user with another payload (attributes, price…): a run sends them again */
  updated: number;
  /** rows a run would send (updated ones included) */
  rows_to_send: number;
  /** valid rows by platform: to send, already migrated, duplicates and conflicts */
  rows_per_platform: Partial<Record<Platform, number>>;
  /** rows to send by platform */
  to_send_per_platform: Partial<Record<Platform, number>>;
  /** rows to send whose Google token expired more than ~60 days ago: Google may no longer validate them */
  past_google_cutoff: number;
  /**
   * App Store rows as the survey read them (ingest/receiptSurvey.ts): receipts and signed transactions read,
   * tokens sent unread, sandbox and Xcode ones, distinct purchases, rows superseded (not sent), rows per bundle id
   */
  receipts: ReceiptCounts;
  /** how long sending rows_to_send would take */
  eta: PlanEta;
  /** rows to send given by an Apple transaction id: each is looked up in the App Store Server API first (issue 17) */
  apple_lookups: number;
  /** what those lookups need that the environment lacks (the variables, the bundle id); absent when nothing is missing */
  apple_lookups_need?: string;
  /** the plan was interrupted: the counts cover the rows read until then */
  interrupted?: boolean;
}

export interface PlanFiles {
  dir: string;
  plan: string;
  rejected: string;
  conflicts: string;
}

export interface PlanResult {
  plan: Plan;
  files: PlanFiles;
  /** 0: nothing rejected and no conflict; 1: rows were rejected or conflict; 4: interrupted */
  exitCode: ExitCode;
}

/** Counts the plan's valid rows by platform from their admissions; takes every row. */
class PlatformCounts implements RowSelector {
  readonly rows = new Map<Platform, number>();
  readonly toSend = new Map<Platform, number>();
  /** rows to send that are looked up first (a transaction id instead of a token) */
  lookups = 0;
  /** of those, rows without a bundle_id cell: looked up in the configured apps (appleBundleIds) */
  lookupsWithoutBundle = 0;

  offer(): RowChoice {
    return 'take';
  }

  admitted(rows: readonly ReceiptJobData[], admissions: readonly Admission[]): void {
    rows.forEach((row, i) => {
      const admission = admissions[i];
      if (!admission) return;
      this.rows.set(row.platform, (this.rows.get(row.platform) ?? 0) + 1);
      if (queuesRow(admission)) this.toSend.set(row.platform, (this.toSend.get(row.platform) ?? 0) + 1);
      if (queuesRow(admission) && row.lookup) {
        this.lookups++;
        if (row.lookup.bundle_id === undefined) this.lookupsWithoutBundle++;
      }
    });
  }
}

/** What the plan's lookups need and the configuration lacks: the key's variables, a bundle id. */
function appleLookupsNeed(config: Config, lookups: number, withoutBundle: number): { apple_lookups_need?: string } {
  if (lookups === 0) return {};
  const needs: string[] = [];
  const found = appleCredentialsOf(config);
  if (!found.ok) needs.push(missingCredentialsMessage(found.missing));
  if (withoutBundle > 0 && (config.appleBundleIds ?? []).length === 0) needs.push('rows without a bundle_id cell need --bundle-id (config appleBundleIds)');
  return needs.length > 0 ? { apple_lookups_need: needs.join('; ') } : {};
}

export async function planMigration(opts: PlanOptions): Promise<PlanResult> {
  checkOptions(planOptionsRule, opts, 'planMigration');
  const { config } = opts;
  return withResources(async (resources) => {
    const sources = await openSources(config, opts.sources, resources);
    const ctx = await openContext(config, resources);
    await sweepStalePlans(ctx.redis, config.prefix);
    const planId = opts.planId ?? newPlanId();
    const log = opts.logger.child({ plan: planId });
    const ledger = new PlanLedger(ctx.redis, config.prefix, planId);
    // Released before the connection it needs (resources are released in reverse order), however the plan ends.
    resources.defer('plan ledger', () => ledger.drop());

    const counts = new PlatformCounts();
    const tokens = new ConflictTokens(ledger, counts);
    const result = await ingest(
      { queue: ctx.queue, ledger, logger: log, sources },
      {
        ...ingestOptionsFrom(config, {
          runId: planId,
          sources: opts.sources,
          ...(opts.columns ? { columns: opts.columns } : {}),
          force: opts.force ?? false,
          ...(opts.onConflict ? { onConflict: opts.onConflict } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        }),
        select: tokens,
        enqueue: false,
      },
    );
    await tokens.flush();
    const state = await ledger.state();

    const dir = opts.outDir ?? join(config.reportDir, planId);
    await mkdir(dir, { recursive: true });
    const files: PlanFiles = { dir, plan: join(dir, 'plan.json'), rejected: join(dir, 'rejected.csv'), conflicts: join(dir, 'conflicts.csv') };
    await writeRejectedCsv(ledger, files.rejected);
    await writeConflictsCsv(ledger, files.conflicts, { tokens: await conflictTokens(ledger), ownRun: false });

    const learned = await readRateState(ctx.redis, new RedisKeys(config.prefix));
    const plan: Plan = {
      plan_id: planId,
      created_at: new Date().toISOString(),
      sources: state.sources,
      rows_read: state.rows_read,
      rows_rejected: state.rows_rejected,
      rows_duplicate: state.rows_duplicate,
      conflicts: state.rows_conflict,
      conflicts_held: state.rows_held,
      already_migrated: state.rows_already_migrated,
      updated: state.rows_updated,
      rows_to_send: state.rows_queued,
      rows_per_platform: Object.fromEntries(counts.rows),
      to_send_per_platform: Object.fromEntries(counts.toSend),
      past_google_cutoff: result.pastCutoff,
      receipts: result.receipts ?? { read: 0, unread: 0, sandbox: 0, purchases: 0, superseded: 0, bundles: {} },
      eta: planEta(state.rows_queued, {
        headroom: config.rateHeadroom,
        ...(learned ? { learned } : {}),
        ...(config.ratePerSecond !== undefined ? { configured: config.ratePerSecond } : {}),
      }),
      apple_lookups: counts.lookups,
      ...appleLookupsNeed(config, counts.lookups, counts.lookupsWithoutBundle),
      ...(result.aborted ? { interrupted: true } : {}),
    };
    await writeFile(files.plan, `${JSON.stringify({ ...plan, files }, null, 2)}\n`);
    log.info({ rows: plan.rows_read, toSend: plan.rows_to_send, rejected: plan.rows_rejected, conflicts: plan.conflicts, dir }, 'plan written');
    return { plan, files, exitCode: exitCodeFor({ incomplete: result.aborted, problems: plan.rows_rejected + plan.conflicts }) };
  });
}
