// The verify pass: reads, once per user, the current state of every user a run migrated and compares it with
// what the POST's answer said at import time (the outcome's subscriber summary) and, when the row carried
// them, with its expected_* columns. It finds what changed since the import: a deleted customer, a refunded
// or revoked purchase, an entitlement that lapsed early, a purchase transferred to someone else. An App Store
// row's subscriptions are held against its receipt too (./receiptExpiries.ts), with no expected_* column needed.
// The rules are ../state/compareState.ts; this module does the reading, and the `verify` command stores and
// reports what it finds.
import pLimit from 'p-limit';
import type { RunLedger } from '../ledger/runLedger.js';
import { isFatalReadFailure, type CustomerReader, type ReadResult } from '../revenuecat/customerReader.js';
import type { RunSources } from '../ingest/reread.js';
import { compareReceiptExpiries, compareState, DEFAULT_TOLERANCE_MS, type ImportedRow } from '../state/compareState.js';
import { parseExpectations, type Expectations } from '../state/expectations.js';
import { rowRef, type StateMismatch } from '../state/mismatch.js';
import type { Outcome } from '../types.js';
import { isAppStoreRow, readReceiptExpiries, receiptOf, type ReceiptExpiries } from './receiptExpiries.js';

export interface VerifyOptions {
  ledger: RunLedger;
  reader: Pick<CustomerReader, 'read'>;
  /** Users read at once (the reader paces the requests themselves). */
  concurrency: number;
  /** After each user: users done, users in all. */
  onProgress?: (done: number, total: number) => void;
  /** default 1 day */
  toleranceMs?: number;
  /** Epoch ms for "now" in the comparison; default Date.now() at each comparison. */
  now?: () => number;
  /**
   * A row's expectations. Default: the outcome's `expect` field (the expected_* columns) when it has one.
   */
  expectations?: (outcome: Outcome) => Expectations | undefined;
  /**
   * The run's sources, to read the App Store rows' receipts again and compare each subscription's expiry with the
   * receipt's. Without them, no receipt is compared.
   */
  sources?: Pick<RunSources, 'read'>;
}

export interface VerifyResult {
  /** succeeded rows whose user was read (or failed to be read) */
  checked: number;
  /** distinct users read */
  users: number;
  /** rows with no mismatch */
  matched: number;
  /** sorted by source and line */
  mismatches: StateMismatch[];
  /** set when a failure that every read would repeat (401, 403, unknown project) stopped the pass early; rows of users not read are not in `checked` */
  aborted?: { reason: string; message: string; status?: number };
  /** App Store rows' receipts read again (when `sources` were given and the run has App Store rows): how many were compared, and why not the rest */
  receipts?: Omit<ReceiptExpiries, 'bySource'>;
}

/** Reads every succeeded row's user once and compares; see compareState. */
export async function verifyRun(opts: VerifyOptions): Promise<VerifyResult> {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new Error(`concurrency must be a positive integer (got ${String(opts.concurrency)})`);
  const tolerance = opts.toleranceMs ?? DEFAULT_TOLERANCE_MS;
  const expectationsOf = opts.expectations ?? rowExpectations;

  // Only what the comparison needs is kept per row: a few hundred bytes each.
  const byUser = new Map<string, { row: ImportedRow; expect: Expectations | undefined }[]>();
  const places: Pick<Outcome, 'src' | 'line' | 'fp' | 'platform'>[] = [];
  for await (const outcome of opts.ledger.outcomes()) {
    if (outcome.status !== 'succeeded') continue;
    const row: ImportedRow = { ...rowRef(outcome), ...(outcome.subscriber !== undefined ? { subscriber: outcome.subscriber } : {}) };
    let rows = byUser.get(outcome.app_user_id);
    if (!rows) {
      rows = [];
      byUser.set(outcome.app_user_id, rows);
    }
    rows.push({ row, expect: expectationsOf(outcome) });
    if (opts.sources && isAppStoreRow(outcome)) places.push({ src: outcome.src, line: outcome.line, fp: outcome.fp, platform: outcome.platform });
  }
  // Read before the first request, each source once, front to back: thousands of rows a second, where the API
  // reads a few users a second.
  const receipts = opts.sources ? await readReceiptExpiries(opts.sources, places) : undefined;
  places.length = 0;

  const total = byUser.size;
  const limit = pLimit(opts.concurrency);
  const mismatches: StateMismatch[] = [];
  let checked = 0;
  let users = 0;
  let matched = 0;
  let done = 0;
  let aborted: VerifyResult['aborted'];

  await Promise.all(
    [...byUser].map(([appUserId, rows]) =>
      limit(async () => {
        if (aborted) return;
        const result: ReadResult = await opts.reader.read(appUserId);
        users++;
        checked += rows.length;
        if (!result.ok) {
          // The tasks still queued see `aborted` and return at once (clearQueue would leave their promises pending).
          if (isFatalReadFailure(result) && !aborted) {
            aborted = { reason: result.reason, message: result.message, ...(result.status !== undefined ? { status: result.status } : {}) };
          }
          const actual = `${result.reason}${result.status !== undefined ? ` (HTTP ${result.status})` : ''}: ${result.message}`;
          for (const { row } of rows) mismatches.push({ ...rowRef(row), kind: 'read_failed', expected: 'the customer could be read', actual });
        } else {
          const now = opts.now?.() ?? Date.now();
          for (const { row, expect } of rows) {
            const found = compareState(row, result.state, { ...expect, toleranceMs: tolerance, now });
            const receipt = receipts && receiptOf(receipts, row);
            if (receipt) found.push(...compareReceiptExpiries(row, result.state, receipt, tolerance));
            if (found.length === 0) matched++;
            else mismatches.push(...found);
          }
        }
        done++;
        opts.onProgress?.(done, total);
      }),
    ),
  );

  mismatches.sort((a, b) => (a.src < b.src ? -1 : a.src > b.src ? 1 : a.line - b.line || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0)));
  return {
    checked,
    users,
    matched,
    mismatches,
    ...(aborted ? { aborted } : {}),
    ...(receipts && receipts.read + receipts.unread + receipts.unavailable > 0 ? { receipts: receiptCounts(receipts) } : {}),
  };
}

function receiptCounts(r: ReceiptExpiries): NonNullable<VerifyResult['receipts']> {
  return { read: r.read, unread: r.unread, unavailable: r.unavailable, ...(r.unavailableReason !== undefined ? { unavailableReason: r.unavailableReason } : {}) };
}

/** The expected_* values an outcome carries (`expect`), read defensively so any shape of it is safe. */
export function rowExpectations(outcome: Outcome): Expectations | undefined {
  return parseExpectations((outcome as { expect?: unknown }).expect);
}
