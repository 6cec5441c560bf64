// `retry`: sends a run's failed rows again, as a new attempt of the same run. By default only rows that failed
// for reasons that may pass now (timeouts, 5xx, store outages) once their attempts ran out; the run's report
// then shows each row's latest outcome, and history.csv the ones they replaced.
import { checkOptions, retryOptionsRule } from '../options.js';
import { enqueueRows } from '../queue/receiptsQueue.js';
import { ERROR_CODES, TRANSIENT_STATUSES } from '../revenuecat/classify.js';
import { withContext, type Context } from '../session/context.js';
import { RunSession, type SessionCallerOptions, type SessionResult } from '../session/runSession.js';
import type { Outcome, ReceiptJobData } from '../types.js';

export interface RetryOptions extends SessionCallerOptions {
  runId: string;
  /** also rows that failed for good (invalid receipt, …): for after fixing data or project settings */
  includePermanent?: boolean;
  /** only rows with these RevenueCat codes (7101) or reasons (timeout, http_503, transferred) */
  codes?: string[];
  /** false: only re-queue, for workers running elsewhere */
  wait?: boolean;
}

export interface RetryResult extends Partial<SessionResult> {
  requeued: number;
}

const NETWORK_REASONS = new Set(['timeout', 'reset', 'refused', 'other', 'too_many_starts', 'job_failed']);

/** Whether a failed row's reason is one that a later attempt may get past. */
export function isTransientFailure(o: Pick<Outcome, 'reason' | 'code' | 'http_status'>): boolean {
  if (o.code !== undefined && ERROR_CODES[o.code]) return ERROR_CODES[o.code]?.retry === 'transient';
  if (o.reason && NETWORK_REASONS.has(o.reason)) return true;
  const status = o.http_status;
  return status !== undefined && status !== 200 && (status >= 500 || TRANSIENT_STATUSES.has(status));
}

function selected(o: Outcome, opts: RetryOptions): boolean {
  if (opts.codes && opts.codes.length > 0) return opts.codes.some((c) => c === String(o.code ?? '') || c === o.reason);
  return opts.includePermanent === true || isTransientFailure(o);
}

const CHUNK = 500;

async function requeue(ctx: Context, opts: RetryOptions): Promise<number> {
  const ledger = await ctx.existingLedger(opts.runId);
  let batch: { job: ReceiptJobData; fp: string; stored: string }[] = [];
  let requeued = 0;
  const flush = async (): Promise<void> => {
    // Jobs first, then re-open: a crash in between leaves rows whose new outcome simply replaces the old one.
    await enqueueRows(
      ctx.queue,
      batch.map((b) => b.job),
      opts.config.maxAttempts,
    );
    requeued += await ledger.reopen(batch);
    batch = [];
  };
  for await (const { outcome: o, stored } of ledger.failedRecords()) {
    if (!o.body || !selected(o, opts)) continue;
    batch.push({ fp: o.fp, stored, job: { run: opts.runId, fp: o.fp, src: o.src, line: o.line, platform: o.platform, body: o.body, input: o.input ?? {} } });
    if (batch.length >= CHUNK) await flush();
  }
  if (batch.length > 0) await flush();
  return requeued;
}

export async function retryRun(opts: RetryOptions): Promise<RetryResult> {
  checkOptions(retryOptionsRule, opts, 'retryRun');
  if (opts.wait === false) return { requeued: await withContext(opts.config, (ctx) => requeue(ctx, opts)) };
  let requeued = 0;
  const result = await new RunSession(opts).run(async ({ ctx, log }) => {
    requeued = await requeue(ctx, opts);
    log.info({ requeued }, 'failed rows queued again');
  });
  return { requeued, ...result };
}
