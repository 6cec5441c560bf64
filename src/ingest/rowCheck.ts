// One record of a source → the row it is, or the reason it cannot be sent: the steps after the column plan, the
// same for the ingester and for a row read again (reread.ts), so that a failed row's cells and body come out of
// its source exactly as they went in.
import { unescapeFormulas } from '../csv/formulaCells.js';
import type { Platform, ReceiptBody } from '../revenuecat/fields.js';
import type { AppleLookup } from '../appstore/lookup/transactionLookup.js';
import type { KeyPlan } from '../revenuecat/keyRing.js';
import type { Expectations } from '../state/expectations.js';
import type { ColumnPlan } from './columns.js';
import { readExpectations } from './expectations.js';
import type { CsvItem } from './readCsv.js';
import { readTokenExpiry, type TokenExpiry } from './tokenExpiry.js';
import { validateRow } from './validateRow.js';

/** A valid row: what the queue needs of it, before the ledger keys it. */
export interface CheckedRow {
  platform: Platform;
  body: ReceiptBody;
  /** the row's cells as read */
  input: Record<string, string>;
  expect?: Expectations;
  token_expiry?: TokenExpiry;
  /** an App Store row given by its transaction id: the worker looks it up first */
  lookup?: AppleLookup;
}

export type RowCheck = { ok: true; row: CheckedRow } | { ok: false; reason: string };

export interface RowCheckOptions {
  /** the platform of rows without a platform cell (--platform) */
  platform?: Platform;
  /** the platforms the run has a key for (absent: no check) */
  keys?: KeyPlan;
  /** the clock that decides whether a Google token is past its cut-off */
  now: () => number;
}

/** An item as the ingester reads it: reports write formula-like cells with a leading apostrophe, read back here. */
export function asRead(item: CsvItem): CsvItem {
  return item.kind === 'record' ? { ...item, values: unescapeFormulas(item.values) } : item;
}

/** validate (fields, platform, key) → expected_* columns → token expiry. */
export function checkRow(values: Record<string, string>, plan: ColumnPlan, opts: RowCheckOptions): RowCheck {
  const checked = validateRow(values, plan, { ...(opts.platform !== undefined ? { platform: opts.platform } : {}), ...(opts.keys ? { keys: opts.keys } : {}) });
  if (!checked.ok) return checked;
  const expected = readExpectations(values);
  if (!expected.ok) return expected;
  const expiry = readTokenExpiry(values, plan, checked.platform, opts.now());
  if (!expiry.ok) return expiry;
  return {
    ok: true,
    row: {
      platform: checked.platform,
      body: checked.body,
      input: values,
      ...(expected.expect ? { expect: expected.expect } : {}),
      ...(expiry.expiry ? { token_expiry: expiry.expiry } : {}),
      ...(checked.lookup ? { lookup: checked.lookup } : {}),
    },
  };
}
