// A canary: `run --limit N` sends N valid rows, shared out round-robin over the platforms of its sources, then
// stops; the same command without --limit (and the same run id) sends the rest and nothing twice.
//
// How it stays resumable: the ingester admits only the rows the canary takes (ingest/ingester.ts, RowSelector)
// and keeps each source's progress mark before the first row it left, so the next ingest of the run reads the
// left rows again, and finds the rows the canary took already admitted (done, or still queued).
//
// How it spreads: before each pass the canary reads ahead in every source, from where the run stands, up to
// surveyRows(N) rows (a survey: read and validated, nothing written), counts the valid rows of each platform and
// shares N out over those platforms round-robin, in the order they first appear. A platform with fewer rows gets
// them all and the others share the rest. A source whose surveyed platforms all have their share is left
// for later at once, so a canary over `ios.csv android.csv` takes from both without reading all of the first.
// Only rows actually queued count towards N: a row already migrated, a duplicate, a held conflict or a row this run
// already finished does not, and the canary takes the next one.
import type { ColumnOptions } from '../ingest/columns.js';
import { planColumns, type ColumnPlan } from '../ingest/columns.js';
import type { IngestResult, RowChoice, RowSelector } from '../ingest/ingester.js';
import { expandSource, type SourceDeps } from '../ingest/sources.js';
import type { InputEncoding } from '../ingest/textEncoding.js';
import { validateRow } from '../ingest/validateRow.js';
import type { Admission, CanaryRecord, RunLedger } from '../ledger/runLedger.js';
import type { Platform } from '../revenuecat/fields.js';
import type { KeyPlan } from '../revenuecat/keyRing.js';
import type { ReceiptJobData } from '../types.js';

/** How many rows of each source the canary reads ahead to find its platforms: ten times the limit, at least 1,000. */
export function surveyRows(limit: number): number {
  return Math.max(10 * limit, 1000);
}

/** A canary's passes at most: each reads on from where the last one left (see runCanary). */
const MAX_PASSES = 8;

/** What a survey found ahead of where the run stands. */
export interface Survey {
  /** valid rows by platform, in the order the platforms first appear */
  platforms: Map<Platform, number>;
  /** the platforms seen in each source entry surveyed (an S3 prefix has one entry per object) */
  bySource: Map<string, Set<Platform>>;
}

export interface SurveyOptions {
  columns: ColumnOptions;
  encoding?: InputEncoding;
  keys?: KeyPlan;
  /** rows to read ahead in each named source */
  rows: number;
}

/**
 * Reads ahead in each source from its progress mark (ledger) and counts valid rows per platform. Rows are only
 * validated as far as their platform goes (a row the ingest rejects for another reason is counted here): the
 * survey shares out a canary, it does not judge rows.
 */
export async function surveySources(ledger: RunLedger, sources: readonly string[], deps: SourceDeps, opts: SurveyOptions): Promise<Survey> {
  const survey: Survey = { platforms: new Map(), bySource: new Map() };
  for (const given of sources) {
    let budget = opts.rows;
    for await (const entry of expandSource(given, deps, opts.encoding === undefined ? {} : { encoding: opts.encoding })) {
      if (budget <= 0) break;
      const mark = await ledger.progress(entry.name);
      const seen = new Set<Platform>();
      survey.bySource.set(entry.name, seen);
      let plan: ColumnPlan | undefined;
      for await (const item of entry.open()) {
        if (item.line <= mark || item.kind !== 'record') continue;
        if (--budget < 0) break;
        if (!plan) {
          const planned = planColumns(item.columns, opts.columns);
          if ('error' in planned) break; // every row of this source is rejected: nothing to share out
          plan = planned.plan;
        }
        const checked = validateRow(item.values, plan, { ...(opts.columns.platform ? { platform: opts.columns.platform } : {}), ...(opts.keys ? { keys: opts.keys } : {}) });
        if (!checked.ok) continue;
        seen.add(checked.platform);
        survey.platforms.set(checked.platform, (survey.platforms.get(checked.platform) ?? 0) + 1);
      }
    }
  }
  return survey;
}

/** Shares `limit` rows out over the platforms round-robin, none getting more than it has (order kept). */
export function shareOut(limit: number, available: ReadonlyMap<Platform, number>): Map<Platform, number> {
  const shares = new Map<Platform, number>([...available.keys()].map((p) => [p, 0]));
  let left = limit;
  while (left > 0) {
    let gave = false;
    for (const [platform, rows] of available) {
      const share = shares.get(platform) ?? 0;
      if (left === 0 || share >= rows) continue;
      shares.set(platform, share + 1);
      left--;
      gave = true;
    }
    if (!gave) break;
  }
  return shares;
}

/** Whether an admission queues its row to be sent (what a canary counts). */
export function queuesRow(a: Admission): boolean {
  return a.kind === 'new' || a.kind === 'updated' || a.kind === 'requeue' || (a.kind === 'conflict' && !a.held);
}

interface Count {
  queued: number;
  /** taken, not yet admitted */
  outstanding: number;
}

/**
 * One pass of a canary: takes rows while their platform is short of its share and the canary of its limit, never
 * more taken-but-unadmitted rows than it may still queue (so it never overshoots), and waits for the admissions
 * before deciding on a row whose platform might still need it. Without shares (nothing found ahead) it takes any
 * platform.
 */
export class CanarySelector implements RowSelector {
  queued = 0;
  taken = 0;
  private outstanding = 0;
  private readonly counts = new Map<Platform, Count>();

  constructor(
    private readonly limit: number,
    private readonly shares: ReadonlyMap<Platform, number>,
    private readonly sourcePlatforms: ReadonlyMap<string, ReadonlySet<Platform>> = new Map(),
  ) {}

  private count(platform: Platform): Count {
    let c = this.counts.get(platform);
    if (!c) {
      c = { queued: 0, outstanding: 0 };
      this.counts.set(platform, c);
    }
    return c;
  }

  private share(platform: Platform): number {
    return this.shares.size === 0 ? Infinity : (this.shares.get(platform) ?? 0);
  }

  offer(row: ReceiptJobData): RowChoice {
    if (this.queued + this.outstanding >= this.limit) return this.outstanding > 0 ? 'wait' : 'stop';
    const c = this.count(row.platform);
    if (c.queued + c.outstanding < this.share(row.platform)) {
      c.outstanding++;
      this.outstanding++;
      this.taken++;
      return 'take';
    }
    // Some of the rows taken may turn out not to be sendable (already migrated, held): then this one is needed.
    if (c.outstanding > 0) return 'wait';
    const here = this.sourcePlatforms.get(row.src);
    if (here && [...here].every((p) => this.count(p).queued >= this.share(p))) return 'next-source';
    return 'leave';
  }

  admitted(rows: readonly ReceiptJobData[], admissions: readonly Admission[]): void {
    rows.forEach((row, i) => {
      const c = this.count(row.platform);
      c.outstanding--;
      this.outstanding--;
      const admission = admissions[i];
      if (admission && queuesRow(admission)) {
        c.queued++;
        this.queued++;
      }
    });
  }
}

/** What a canary did. */
export interface CanaryResult {
  ingest: IngestResult;
  /** rows queued to be sent */
  sent: number;
}

export interface CanaryOptions extends SurveyOptions {
  limit: number;
  sources: readonly string[];
  deps: SourceDeps;
  /** one ingest pass with this selector (the session's ingest, with its options) */
  ingest(select: RowSelector): Promise<IngestResult>;
}

/**
 * Runs the canary's passes: each surveys from where the run stands, shares out what is still to send and
 * ingests with a selector. Another pass follows when one left rows but sent fewer than the limit (the rows it
 * found ahead were already migrated, say), up to MAX_PASSES.
 */
export async function runCanary(ledger: RunLedger, opts: CanaryOptions): Promise<CanaryResult> {
  let sent = 0;
  let total: IngestResult | undefined;
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const survey = await surveySources(ledger, opts.sources, opts.deps, opts);
    const selector = new CanarySelector(opts.limit - sent, shareOut(opts.limit - sent, survey.platforms), survey.bySource);
    const result = await opts.ingest(selector);
    total = total ? addResults(total, result) : result;
    sent += selector.queued;
    if (!result.partial || result.aborted || sent >= opts.limit || selector.queued === 0) break;
  }
  return { ingest: total as IngestResult, sent };
}

function addResults(a: IngestResult, b: IngestResult): IngestResult {
  const sum = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const key = k as keyof IngestResult;
    if (typeof v === 'number') (sum[key] as number) = (a[key] as number) + v;
  }
  return { ...sum, aborted: b.aborted, partial: b.partial };
}

export type { CanaryRecord } from '../ledger/runLedger.js';

/** Keeps what a canary did in the run's ledger, for its report, until an ingest of the run reads every source (undefined: forgets it). */
export async function saveCanary(ledger: RunLedger, record: CanaryRecord | undefined): Promise<void> {
  await ledger.saveCanary(record);
}

export async function readCanary(ledger: RunLedger): Promise<CanaryRecord | undefined> {
  return ledger.canary();
}
