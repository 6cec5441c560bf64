// `retry`: sends a run's failed rows again, as a new attempt of the same run. By default only rows that failed
// for reasons that may pass now (timeouts, 5xx, store outages) once their attempts ran out; the run's report
// then shows each row's latest outcome, and history.csv the ones they replaced. The rows are read again from the
// run's sources (the ledger keeps a failed row's place, not its receipt), which must be unchanged since the run.
import { checkOptions, retryOptionsRule } from '../options.js';
import { enqueueRows } from '../queue/receiptsQueue.js';
import { ERROR_CODES, TRANSIENT_STATUSES } from '../revenuecat/classify.js';
import { SourceUnavailableError, type RowPlace, type RunSources, rereadJob } from '../ingest/reread.js';
import { withContext, type Context } from '../session/context.js';
import { openRunSources } from '../session/runSources.js';
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

/** A failed row chosen to go again: its place (all the ledger keeps of its input) and its stored form for `reopen`. */
interface Chosen {
  place: RowPlace;
  stored: string;
}

/**
 * Queues the chosen failed rows again, their cells and body read again from their sources (ingest/reread.ts).
 * Every source is checked first: when one changed since the run read it, or cannot be reached from here, nothing
 * is queued and the retry is refused with a message naming it (exit 2). A row found to differ while reading (a
 * source changed without its size or mtime changing) stops the retry there, naming the source and line.
 */
async function requeue(ctx: Context, opts: RetryOptions): Promise<number> {
  const ledger = await ctx.existingLedger(opts.runId);
  const chosen: Chosen[] = [];
  for await (const { outcome: o, stored } of ledger.failedRecords()) {
    if (selected(o, opts)) chosen.push({ place: { src: o.src, line: o.line, fp: o.fp }, stored });
  }
  if (chosen.length === 0) return 0;
  chosen.sort((a, b) => (a.place.src < b.place.src ? -1 : a.place.src > b.place.src ? 1 : a.place.line - b.place.line));
  const bySource = new Map<string, Chosen[]>();
  for (const c of chosen) bySource.set(c.place.src, [...(bySource.get(c.place.src) ?? []), c]);

  const run = await openRunSources(ctx, opts.runId);
  try {
    await checkAll(run.sources, [...bySource.keys()]);
    let batch: { job: ReceiptJobData; fp: string; stored: string }[] = [];
    let requeued = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      // Jobs first, then re-open: a crash in between leaves rows whose new outcome simply replaces the old one.
      await enqueueRows(
        ctx.queue,
        batch.map((b) => b.job),
        opts.config.maxAttempts,
      );
      requeued += await ledger.reopen(batch);
      batch = [];
    };
    for (const [src, rows] of bySource) {
      const stored = new Map(rows.map((r) => [r.place.line, r.stored]));
      for await (const r of run.sources.read(
        src,
        rows.map((c) => c.place),
      )) {
        if (!r.ok) {
          await flush();
          throw new SourceUnavailableError(src, 'changed', `retry stopped after queueing ${requeued} rows again: ${r.reason}`);
        }
        batch.push({ fp: r.place.fp, stored: stored.get(r.place.line) as string, job: rereadJob(opts.runId, r) });
        if (batch.length >= CHUNK) await flush();
      }
    }
    await flush();
    return requeued;
  } finally {
    run.close();
  }
}

/** Refuses the retry, naming every source that is not the one the run read, before anything is queued. */
async function checkAll(sources: RunSources, names: string[]): Promise<void> {
  const refused: SourceUnavailableError[] = [];
  for (const name of names) {
    try {
      await sources.check(name);
    } catch (err) {
      if (!(err instanceof SourceUnavailableError)) throw err;
      refused.push(err);
    }
  }
  const [first] = refused;
  if (first === undefined) return;
  if (refused.length === 1) throw new SourceUnavailableError(first.source, first.why, `retry refused, nothing was queued: ${first.message}`);
  throw new SourceUnavailableError(
    first.source,
    first.why,
    `retry refused, nothing was queued: ${refused.length} sources cannot be read again:\n${refused.map((e) => `- ${e.message}`).join('\n')}`,
  );
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
