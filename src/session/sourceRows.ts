// Rows read again from their sources by place, for the reconcile pass (queue/reconcile.ts): the ledger keeps no
// row bodies, so a row whose job was lost is rebuilt from the line it was read from, through the ingester's own
// read path (columns planned from the header, the row validated, its expectations and token expiry read).
// TODO(issue 16): src/ingest/reread.ts (branch `reread`) re-reads failed rows by (source, line, fp), checking that
// the source has not changed since ingest; once merged, `sourceRowsAt` should delegate to it.
import type { ColumnOptions } from '../ingest/columns.js';
import { planColumns, type ColumnPlan } from '../ingest/columns.js';
import { readExpectations } from '../ingest/expectations.js';
import { expandSource, type SourceDeps } from '../ingest/sources.js';
import type { InputEncoding } from '../ingest/textEncoding.js';
import { readTokenExpiry, rowPriority } from '../ingest/tokenExpiry.js';
import { validateRow } from '../ingest/validateRow.js';
import { keyBytes } from '../ledger/rowRecord.js';
import { tokenFingerprint } from '../ledger/rowIdentity.js';
import type { RowPlace, RowRead, RowsAt } from '../queue/reconcile.js';
import { unescapeFormulas } from '../csv/formulaCells.js';
import type { KeyPlan } from '../revenuecat/keyRing.js';

export interface SourceRowsOptions {
  runId: string;
  /** how the run's ingest mapped the columns (the same options give the same rows) */
  columns: ColumnOptions;
  encoding?: InputEncoding;
  keys?: KeyPlan;
  /** how S3 sources are reached (default: the process's client) */
  deps?: SourceDeps;
  now?: () => number;
}

/**
 * A `RowsAt` that reads each source named by the places once, from its start, and rebuilds the rows at those
 * lines. A row that no longer reads as it did (another token at that line, a cell now invalid, a source gone) is
 * answered with the reason, naming the source.
 */
export function sourceRowsAt(opts: SourceRowsOptions): RowsAt {
  const now = opts.now ?? Date.now;
  return async (places) => {
    const answers = new Map<RowPlace, RowRead>();
    const bySource = new Map<string, Map<number, RowPlace[]>>();
    for (const p of places) {
      const lines = bySource.get(p.src) ?? new Map<number, RowPlace[]>();
      lines.set(p.line, [...(lines.get(p.line) ?? []), p]);
      bySource.set(p.src, lines);
    }
    for (const [source, lines] of bySource) {
      try {
        await readLines(source, lines, opts, now(), answers);
      } catch (err) {
        const reason = `cannot read ${source} again: ${(err as Error).message}`;
        for (const list of lines.values()) for (const p of list) if (!answers.has(p)) answers.set(p, { ok: false, reason });
      }
    }
    return places.map((p) => answers.get(p) ?? { ok: false, reason: `${p.src} has no row at line ${p.line} any more: was the file changed since it was ingested?` });
  };
}

async function readLines(source: string, lines: Map<number, RowPlace[]>, opts: SourceRowsOptions, now: number, answers: Map<RowPlace, RowRead>): Promise<void> {
  const last = Math.max(...lines.keys());
  let plan: ColumnPlan | undefined;
  for await (const entry of expandSource(source, opts.deps ?? {}, opts.encoding === undefined ? {} : { encoding: opts.encoding })) {
    // An S3 URL of an object names that object alone; a prefix's other objects are other sources.
    if (entry.name !== source) continue;
    for await (const read of entry.open()) {
      if (read.line > last) return;
      if (read.kind !== 'record') continue;
      if (!plan) {
        const planned = planColumns(read.columns, opts.columns);
        if ('error' in planned) throw new Error(planned.error);
        plan = planned.plan;
      }
      const wanted = lines.get(read.line);
      if (!wanted) continue;
      for (const place of wanted) answers.set(place, rowAt(place, unescapeFormulas(read.values), plan, opts, now));
    }
  }
}

function rowAt(place: RowPlace, values: Record<string, string>, plan: ColumnPlan, opts: SourceRowsOptions, now: number): RowRead {
  const changed = (why: string): RowRead => ({ ok: false, reason: `${place.src} line ${place.line} ${why}: was the file changed since it was ingested?` });
  const checked = validateRow(values, plan, { ...(opts.columns.platform ? { platform: opts.columns.platform } : {}), ...(opts.keys ? { keys: opts.keys } : {}) });
  if (!checked.ok) return changed(`no longer reads as a row (${checked.reason})`);
  // The place's record key is its token's fingerprint (and a variant byte for a conflict): the same token or not.
  const token = tokenFingerprint(checked.platform, checked.body.fetch_token);
  if (!keyBytes(place.fp).subarray(0, token.length).equals(token)) return changed('holds another token');
  const expected = readExpectations(values);
  if (!expected.ok) return changed(`no longer reads as a row (${expected.reason})`);
  const expiry = readTokenExpiry(values, plan, checked.platform, now);
  if (!expiry.ok) return changed(`no longer reads as a row (${expiry.reason})`);
  return {
    ok: true,
    row: {
      run: opts.runId,
      fp: place.fp,
      src: place.src,
      line: place.line,
      platform: checked.platform,
      body: checked.body,
      input: values,
      ...(expected.expect ? { expect: expected.expect } : {}),
      ...(expiry.expiry ? { token_expiry: expiry.expiry } : {}),
      ...(plan.expiry !== undefined ? { priority: rowPriority(expiry.expiry) } : {}),
    },
  };
}
