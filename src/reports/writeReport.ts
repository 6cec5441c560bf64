// Writes a run's report directory from its ledger: summary.json, succeeded.csv, failed.csv, rejected.csv and
// duplicates.csv. Failed and rejected rows keep their input cells first, so either file can be fixed up and
// fed back to `rc-migrate run` as it is. Failed rows' cells and superseded rows' users are read again from the
// rows' sources (the ledger keeps their places only: ingest/reread.ts).
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { stringify } from 'csv-stringify';
import type { Conflict, RunLedger } from '../ledger/runLedger.js';
import type { FatalReason } from '../queue/fatalStop.js';
import type { Duplicate, Outcome, Rejection, SupersededPlace } from '../types.js';
import { PLATFORM_COLUMN_NAMES } from '../ingest/columns.js';
import { buildSummary, OutcomeTally, type CanarySummary, type Summary } from './summary.js';
import { renderReportHtml } from './html.js';
import { escapeFormula } from '../csv/formulaCells.js';
import { percentileOf, type ReportData } from './reportData.js';
import { describeCode } from '../revenuecat/classify.js';
import { maskToken } from '../ingest/fingerprint.js';
import type { RunSources } from '../ingest/reread.js';
import { isApplePlatform } from '../ingest/surveyPass.js';
import { locationOf } from '../redis/keys.js';

export interface ReportFiles {
  dir: string;
  summary: string;
  succeeded: string;
  failed: string;
  rejected: string;
  duplicates: string;
  alreadyMigrated: string;
  conflicts: string;
  superseded: string;
  history: string;
  mismatches: string;
  html: string;
}

/**
 * The ledger keeps a succeeded row in a few dozen bytes (ledger/rowRecord.ts): not its masked token nor when it
 * was queued. `fingerprint` (its token's, as in already_migrated.csv and conflicts.csv) and source and line find it.
 */
const SUCCEEDED_COLUMNS = [
  'source',
  'line',
  'platform',
  'app_user_id',
  'product_id',
  'fingerprint',
  'http_status',
  'attempts',
  'original_app_user_id',
  'product_found',
  'active_entitlements',
  'finished_at',
] as const;

/** Columns appended to failed.csv and rejected.csv. Prefixed so they never clash with input columns. */
const FAILED_COLUMNS = ['error_source', 'error_line', 'error_reason', 'error_code', 'error_http_status', 'error_message', 'error_attempts'] as const;
const REJECTED_COLUMNS = ['error_source', 'error_line', 'error_reason'] as const;
const DUPLICATE_COLUMNS = ['source', 'line', 'duplicate_of'] as const;
/** App Store rows not sent, and the row whose newer receipt carries every purchase they carry. */
const SUPERSEDED_COLUMNS = ['source', 'line', 'app_user_id', 'superseded_by_source', 'superseded_by_line'] as const;
/**
 * superseded.csv's app_user_id of a row whose source could not be read again (changed since the run, gone): the
 * row is listed all the same, and a warning names the source and why (as failed.csv's rows without their cells).
 */
export const USER_NOT_READ_BACK = '(could not be read again from its source)';
const ALREADY_MIGRATED_COLUMNS = ['source', 'line', 'fingerprint'] as const;
/** Rows whose token another user has: the row, what was done with it, and the other user's row (this run's or an earlier run's). */
const CONFLICT_COLUMNS = ['source', 'line', 'app_user_id', 'token', 'fingerprint', 'action', 'other_run', 'other_source', 'other_line', 'other_app_user_id', 'original_transaction_id'] as const;
/** Outcomes that a retry replaced, oldest first: the run's report shows the latest, this keeps the rest. */
/** Rows whose state differs from what was expected: at import (expected_* columns) or by a later `verify`. */
const MISMATCH_COLUMNS = ['source', 'line', 'app_user_id', 'product_id', 'stage', 'kind', 'expected', 'actual'] as const;
const HISTORY_COLUMNS = ['source', 'line', 'status', 'reason', 'code', 'http_status', 'message', 'attempts', 'finished_at'] as const;

type Cells = Record<string, string | number | undefined>;

async function writeCsv(path: string, columns: readonly string[], rows: Iterable<Cells> | AsyncIterable<Cells>): Promise<number> {
  const out = createWriteStream(path);
  const csv = stringify({ header: true, columns: [...columns] });
  csv.pipe(out);
  let n = 0;
  for await (const row of rows) {
    const safe: Cells = {};
    for (const [k, v] of Object.entries(row)) safe[k] = typeof v === 'string' ? escapeFormula(v) : v;
    if (!csv.write(safe)) await once(csv, 'drain');
    n++;
  }
  csv.end();
  await once(out, 'finish');
  return n;
}

const byPlace = (a: { src: string; line: number }, b: { src: string; line: number }): number =>
  a.src < b.src ? -1 : a.src > b.src ? 1 : a.line - b.line;

/**
 * Input columns of the rows, in the order first seen, without error columns of an earlier report (a failed.csv
 * fed back in would otherwise grow a second set). A platform column is added when the input had none (the
 * file's platform came from --platform), so that the rows stand on their own.
 */
function inputColumns(rows: { input?: Record<string, string> }[], withPlatform: boolean): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const col of Object.keys(row.input ?? {})) if (!col.startsWith('error_')) seen.add(col);
  const columns = [...seen];
  if (withPlatform && !columns.some((c) => PLATFORM_COLUMN_NAMES.includes(c.trim().toLowerCase()))) columns.push('platform');
  return columns;
}

function inputCells(input: Record<string, string> | undefined, columns: string[], platform?: string): Cells {
  const cells: Cells = {};
  for (const col of columns) cells[col] = input?.[col] ?? (col === 'platform' ? platform : undefined);
  return cells;
}

export interface WriteReportOptions {
  dir: string;
  fatal?: FatalReason;
  /** the run so far is a canary (its status is then `partial` once its rows have their outcome) */
  canary?: CanarySummary;
  /** masked tokens of the conflicting rows by location (`source#line`), for conflicts.csv */
  conflictTokens?: ReadonlyMap<string, string>;
  /** the run's sources, which failed rows' input cells and superseded rows' users are read again from (ingest/reread.ts) */
  sources: Pick<RunSources, 'header' | 'read'>;
  /**
   * told each source whose failed rows could not be read again (failed.csv then has their error columns only), and
   * each whose superseded rows' users could not (superseded.csv then says USER_NOT_READ_BACK)
   */
  onWarning?: (message: string) => void;
}

/**
 * failed.csv: every failed row by place, its input cells first (so the file can be fixed and fed back to `run`),
 * then the error columns. The cells are read again from the row's source, streamed source by source, so the
 * report holds no more than the outcomes. A source that changed since the run read it, or cannot be reached from
 * here, still gets its rows written, with the error columns (and a platform) but empty input cells, and a warning
 * naming the source; the same holds for a single row that is not what the run read there.
 * Returns those warnings, and the masked tokens of the rows in `examples` (report.html's examples).
 */
async function writeFailedCsv(
  path: string,
  failed: readonly Outcome[],
  sources: Pick<RunSources, 'header' | 'read'>,
  examples: ReadonlySet<string>,
): Promise<{ warnings: string[]; tokens: Map<string, string> }> {
  const warnings: string[] = [];
  const tokens = new Map<string, string>();
  const groups = bySource(failed);
  // Every row of a source has the keys its header gives (readCsv), so the sources' headers are the rows' columns.
  const columns = inputColumns(
    groups.map(([src]) => ({ input: headerKeys(sources.header(src)) })),
    true,
  );
  async function* rows(): AsyncIterable<Cells> {
    for (const [src, outcomes] of groups) {
      const inputs = new Map<number, Record<string, string>>();
      const platforms = new Map<number, string>();
      let unread = 0;
      let firstReason: string | undefined;
      try {
        // One source at a time: its rows' cells are held only until they are written.
        for await (const r of sources.read(src, outcomes)) {
          if (!r.ok) {
            unread++;
            firstReason ??= r.reason;
            continue;
          }
          inputs.set(r.place.line, r.input);
          platforms.set(r.place.line, r.platform);
          if (examples.has(r.place.fp)) tokens.set(r.place.fp, maskToken(r.body.fetch_token));
        }
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        unread = outcomes.length - inputs.size;
        firstReason = message;
      }
      if (unread > 0) {
        warnings.push(
          `failed.csv: ${unread} of ${outcomes.length} failed row${outcomes.length === 1 ? '' : 's'} of ${src} without their input cells (error columns only): ${firstReason ?? 'not read'}`,
        );
      }
      for (const o of outcomes) {
        yield {
          ...inputCells(inputs.get(o.line), columns, platforms.get(o.line) ?? o.platform),
          error_source: o.src,
          error_line: o.line,
          error_reason: o.reason,
          error_code: o.code,
          error_http_status: o.http_status,
          error_message: o.message,
          error_attempts: o.attempts,
        };
      }
    }
  }
  await writeCsv(path, [...columns, ...FAILED_COLUMNS], rows());
  return { warnings, tokens };
}

/**
 * superseded.csv: every superseded row by place, with its carrier's place, and its user read again from its source
 * (the ledger keeps only the places: ledger/rowRecord.ts encodeSuperseded), source by source as failed.csv's
 * cells. A row of a source that changed since the run read it, or cannot be reached from here, or that is not an
 * App Store row there any more, is listed with USER_NOT_READ_BACK as its user; one warning per such source says
 * how many and why. Returns the warnings.
 */
async function writeSupersededCsv(path: string, superseded: readonly SupersededPlace[], sources: Pick<RunSources, 'read'>): Promise<string[]> {
  const warnings: string[] = [];
  async function* rows(): AsyncIterable<Cells> {
    for (const [src, places] of bySource(superseded)) {
      const users = new Map<number, string>();
      let firstReason: string | undefined;
      try {
        for await (const r of sources.read(src, places)) {
          if (r.ok && isApplePlatform(r.platform)) users.set(r.place.line, r.body.app_user_id);
          else firstReason ??= r.ok ? `${src} line ${r.place.line}: not an App Store row now: the source changed since the run read it` : r.reason;
        }
      } catch (err) {
        firstReason = err instanceof Error ? err.message : String(err);
      }
      const unread = places.filter((p) => !users.has(p.line)).length;
      if (unread > 0) {
        warnings.push(
          `superseded.csv: ${unread} of ${places.length} superseded row${places.length === 1 ? '' : 's'} of ${src} without their App User ID ("${USER_NOT_READ_BACK}" instead): ${firstReason ?? 'not read'}`,
        );
      }
      for (const r of places) {
        yield { source: r.src, line: r.line, app_user_id: users.get(r.line) ?? USER_NOT_READ_BACK, superseded_by_source: r.by.src, superseded_by_line: r.by.line };
      }
    }
  }
  await writeCsv(path, SUPERSEDED_COLUMNS, rows());
  return warnings;
}

/** Rows sorted by place → their sources in order, each with its rows (in line order). */
function bySource<T extends { src: string }>(rows: readonly T[]): [string, T[]][] {
  const groups: [string, T[]][] = [];
  for (const row of rows) {
    const last = groups[groups.length - 1];
    if (last && last[0] === row.src) last[1].push(row);
    else groups.push([row.src, [row]]);
  }
  return groups;
}

/** The keys a record of this header has, in the order its cells' object has them (readCsv builds it the same way). */
function headerKeys(header: readonly string[] | undefined): Record<string, string> | undefined {
  return header === undefined ? undefined : Object.fromEntries(header.map((c) => [c, '']));
}

/** rejected.csv: every rejected row, its input cells first (so the file can be fixed and fed back), by place. */
export async function writeRejectedCsv(ledger: RunLedger, path: string): Promise<Rejection[]> {
  const rejected: Rejection[] = [];
  for await (const r of ledger.rejections()) rejected.push(r);
  rejected.sort(byPlace);
  const rejectedCols = inputColumns(rejected, false);
  await writeCsv(
    path,
    [...rejectedCols, ...REJECTED_COLUMNS],
    dedupeByPlace(rejected).map((r) => ({ ...inputCells(r.input, rejectedCols), error_source: r.src, error_line: r.line, error_reason: r.reason })),
  );
  return rejected;
}

/**
 * conflicts.csv: every row whose token another user has, held or sent, with the other user's row, by place.
 * `tokens`: masked tokens by location; `ownRun: false` leaves other_run empty for the other rows of this ledger
 * (a plan's, whose id means nothing to the reader).
 */
export async function writeConflictsCsv(ledger: RunLedger, path: string, opts: { tokens?: ReadonlyMap<string, string>; ownRun?: boolean } = {}): Promise<number> {
  const tokens = opts.tokens ?? new Map<string, string>();
  const conflicts: Conflict[] = [];
  for await (const c of ledger.conflicts()) conflicts.push(c);
  conflicts.sort(byPlace);
  return writeCsv(
    path,
    CONFLICT_COLUMNS,
    dedupeByPlace(conflicts).map((c) => ({
      source: c.src,
      line: c.line,
      app_user_id: c.app_user_id,
      token: tokens.get(locationOf(c.src, c.line)),
      fingerprint: c.fp,
      action: c.held ? 'held' : 'sent',
      other_run: opts.ownRun === false && c.other.run_id === ledger.runId ? undefined : c.other.run_id,
      other_source: c.other.src,
      other_line: c.other.line,
      other_app_user_id: c.other.app_user_id,
      original_transaction_id: c.original_transaction_id,
    })),
  );
}

/** Reads everything the ledger holds for the run and writes the report; returns the summary. */
export async function writeReport(ledger: RunLedger, opts: WriteReportOptions): Promise<{ summary: Summary; files: ReportFiles }> {
  await mkdir(opts.dir, { recursive: true });
  const files: ReportFiles = {
    dir: opts.dir,
    summary: join(opts.dir, 'summary.json'),
    succeeded: join(opts.dir, 'succeeded.csv'),
    failed: join(opts.dir, 'failed.csv'),
    rejected: join(opts.dir, 'rejected.csv'),
    duplicates: join(opts.dir, 'duplicates.csv'),
    alreadyMigrated: join(opts.dir, 'already_migrated.csv'),
    conflicts: join(opts.dir, 'conflicts.csv'),
    superseded: join(opts.dir, 'superseded.csv'),
    history: join(opts.dir, 'history.csv'),
    mismatches: join(opts.dir, 'mismatches.csv'),
    html: join(opts.dir, 'report.html'),
  };
  const state = await ledger.state();
  const tally = new OutcomeTally();
  // HSCAN may return an entry twice while the hash grows (a report of a running run): keep the first.
  const seen = state.complete ? undefined : new Set<string>();
  const failed: Outcome[] = [];
  const mismatched: Cells[] = [];

  async function* succeeded(): AsyncIterable<Cells> {
    for await (const o of ledger.outcomes()) {
      if (seen) {
        if (seen.has(o.fp)) continue;
        seen.add(o.fp);
      }
      tally.add(o);
      if (o.status === 'failed') {
        failed.push(o);
        continue;
      }
      for (const m of o.mismatches ?? []) {
        mismatched.push({ source: o.src, line: o.line, app_user_id: o.app_user_id, product_id: o.product_id, stage: 'import', kind: m.kind, expected: m.expected, actual: m.actual });
      }
      const sub = o.subscriber;
      yield {
        source: o.src,
        line: o.line,
        platform: o.platform,
        app_user_id: o.app_user_id,
        product_id: o.product_id,
        fingerprint: o.fp,
        http_status: o.http_status,
        attempts: o.attempts,
        original_app_user_id: sub?.original_app_user_id,
        product_found: sub?.product_found,
        active_entitlements: sub?.active_entitlements.map((e) => `${e.id}@${e.expires_date ?? 'never'}`).join(';'),
        finished_at: o.finished_at,
      };
    }
  }
  // Succeeded rows stream in ledger order (there may be millions); failures are few and are sorted by place.
  await writeCsv(files.succeeded, SUCCEEDED_COLUMNS, succeeded());

  // Failed rows' input cells are read again from their sources (the ledger keeps only their place).
  failed.sort(byPlace);
  const examples = new Set(topGroups(failed, failureKey).flatMap(([, rows]) => rows.slice(0, EXAMPLES).map((o) => o.fp)));
  const failedCsv = await writeFailedCsv(files.failed, failed, opts.sources, examples);
  for (const warning of failedCsv.warnings) opts.onWarning?.(warning);

  const rejected = await writeRejectedCsv(ledger, files.rejected);

  const duplicates: Duplicate[] = [];
  for await (const d of ledger.duplicates()) duplicates.push(d);
  duplicates.sort(byPlace);
  await writeCsv(
    files.duplicates,
    DUPLICATE_COLUMNS,
    dedupeByPlace(duplicates).map((d) => ({ source: d.src, line: d.line, duplicate_of: d.first })),
  );

  const migrated: { src: string; line: number; fp: string }[] = [];
  for await (const m of ledger.alreadyMigrated()) migrated.push(m);
  migrated.sort(byPlace);
  await writeCsv(files.alreadyMigrated, ALREADY_MIGRATED_COLUMNS, migrated.map((m) => ({ source: m.src, line: m.line, fingerprint: m.fp })));

  // Superseded rows' users are read again from their sources too (the ledger keeps their places only).
  const superseded: SupersededPlace[] = [];
  for await (const r of ledger.superseded()) superseded.push(r);
  superseded.sort(byPlace);
  const supersededWarnings = await writeSupersededCsv(files.superseded, superseded, opts.sources);
  for (const warning of supersededWarnings) opts.onWarning?.(warning);

  await writeConflictsCsv(ledger, files.conflicts, opts.conflictTokens ? { tokens: opts.conflictTokens } : {});

  async function* history(): AsyncIterable<Cells> {
    for await (const o of ledger.history()) {
      yield {
        source: o.src,
        line: o.line,
        status: o.status,
        reason: o.reason,
        code: o.code,
        http_status: o.http_status,
        message: o.message,
        attempts: o.attempts,
        finished_at: o.finished_at,
      };
    }
  }
  await writeCsv(files.history, HISTORY_COLUMNS, history());

  for await (const m of ledger.verifyMismatches()) {
    mismatched.push({ source: m.src, line: m.line, app_user_id: m.app_user_id, product_id: m.product_id, stage: 'verify', kind: m.kind, expected: m.expected, actual: m.actual });
  }
  const order = (c: Cells): [string, string, number] => [String(c.stage), String(c.source), Number(c.line)];
  mismatched.sort((a, b) => {
    const [sa, fa, la] = order(a);
    const [sb, fb, lb] = order(b);
    return sa !== sb ? (sa < sb ? -1 : 1) : fa !== fb ? (fa < fb ? -1 : 1) : la - lb;
  });
  await writeCsv(files.mismatches, MISMATCH_COLUMNS, mismatched);

  const summary = buildSummary(state, tally, opts.fatal, await ledger.verifySummary(), opts.canary);
  // Failed rows whose source could not be read again are in failed.csv without their input cells, superseded rows
  // in superseded.csv without their users: said here too.
  const allWarnings = [...failedCsv.warnings, ...supersededWarnings];
  const warnings = allWarnings.length > 0 ? { warnings: allWarnings } : {};
  await writeFile(files.summary, `${JSON.stringify({ ...summary, ...warnings, files }, null, 2)}\n`);
  const buckets = await ledger.latencyBuckets();
  const data: ReportData = {
    summary,
    timeline: await ledger.timeline(),
    latency: {
      count: buckets.reduce((a, b) => a + b, 0),
      buckets,
      p50: percentileOf(buckets, 0.5),
      p90: percentileOf(buckets, 0.9),
      p95: percentileOf(buckets, 0.95),
      p99: percentileOf(buckets, 0.99),
    },
    topFailures: topGroups(failed, failureKey).map(([reason, rows]) => {
      const meaning = rows[0]?.code !== undefined ? describeCode(rows[0].code)?.meaning : undefined;
      return {
        reason,
        count: rows.length,
        ...(meaning ? { meaning } : {}),
        examples: rows
          .slice(0, EXAMPLES)
          .map((o) => ({ src: o.src, line: o.line, app_user_id: o.app_user_id, token: failedCsv.tokens.get(o.fp) ?? o.token ?? '', message: o.message ?? '' })),
      };
    }),
    topRejections: topGroups(rejected, (r) => r.reason).map(([reason, rows]) => ({
      reason,
      count: rows.length,
      examples: rows.slice(0, EXAMPLES).map((r) => ({ src: r.src, line: r.line })),
    })),
    generatedAt: new Date().toISOString(),
  };
  await writeFile(files.html, renderReportHtml(data));
  return { summary, files };
}

const EXAMPLES = 3;
const GROUPS = 10;

const failureKey = (o: Outcome): string => o.reason ?? 'unknown';

/** The largest groups first, at most GROUPS of them. */
function topGroups<T>(rows: T[], key: (row: T) => string): [string, T[]][] {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = groups.get(k);
    if (list) list.push(row);
    else groups.set(k, [row]);
  }
  return [...groups.entries()].sort((a, b) => b[1].length - a[1].length).slice(0, GROUPS);
}

/** Sorted input: drops the repeats HSCAN may return for a growing hash. */
function dedupeByPlace<T extends { src: string; line: number }>(rows: T[]): T[] {
  return rows.filter((r, i) => i === 0 || byPlace(rows[i - 1] as T, r) !== 0);
}
