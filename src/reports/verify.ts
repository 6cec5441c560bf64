// The verify pass: reads, once per user, the current state of every user a run migrated and compares it with
// what the POST's answer said at import time (the outcome's subscriber summary) and, when the row carried
// them, with its expected_* columns. It finds what changed since the import: a deleted customer, a refunded
// or revoked purchase, an entitlement that lapsed early, a purchase transferred to someone else.
import pLimit from 'p-limit';
import type { RunLedger } from '../ledger/runLedger.js';
import { isFatalReadFailure, type CustomerReader, type CustomerState, type ReadResult } from '../revenuecat/customerReader.js';
import { productKeyMatches, type SubscriberSummary } from '../revenuecat/subscriber.js';
import type { Outcome } from '../types.js';

export type MismatchKind =
  | 'user_missing'
  | 'product_missing'
  | 'entitlement_inactive'
  | 'entitlement_missing'
  | 'expiry_differs'
  | 'transferred'
  | 'environment_differs'
  | 'read_failed';

export interface Mismatch {
  src: string;
  line: number;
  app_user_id: string;
  product_id?: string;
  kind: MismatchKind;
  expected: string;
  actual: string;
}

/** A row's expected_* columns (all optional) plus the comparison's settings. */
export interface CompareExpectations {
  /** An entitlement (lookup key) that should be active. */
  entitlement?: string;
  /** When it (or, without `entitlement`, the row's product) should expire, ISO 8601. */
  expiresAt?: string;
  environment?: string;
  /** false: the row imports a lapsed purchase, so the expected entitlement is not required to be active. */
  active?: boolean;
  /** How much earlier than expected an expiry may be before it is `expiry_differs`. */
  toleranceMs: number;
  /** Epoch ms; default Date.now(). */
  now?: number;
}

/** The expected_* values alone, as a row carries them. */
export type RowExpectations = Omit<CompareExpectations, 'toleranceMs' | 'now'>;

/** What compareState needs of an outcome. */
export type VerifiedRow = Pick<Outcome, 'src' | 'line' | 'app_user_id' | 'product_id' | 'subscriber'>;

export const DEFAULT_TOLERANCE_MS = 86_400_000;

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
  expectations?: (outcome: Outcome) => RowExpectations | undefined;
}

export interface VerifyResult {
  /** succeeded rows whose user was read (or failed to be read) */
  checked: number;
  /** distinct users read */
  users: number;
  /** rows with no mismatch */
  matched: number;
  /** sorted by source and line */
  mismatches: Mismatch[];
  /** set when a failure that every read would repeat (401, 403, unknown project) stopped the pass early; rows of users not read are not in `checked` */
  aborted?: { reason: string; message: string; status?: number };
}

/**
 * Compares one row with its user's current state. Pure: the reader did the I/O.
 *
 * - `user_missing`: the customer is gone (nothing else is compared then).
 * - `transferred`: its original app user id is not the one the import answer named.
 * - `product_missing`: the row's product is not among the customer's products (subscriptions or one-time).
 * - For each entitlement active in the import answer: still active, else `entitlement_inactive` when the
 *   product that granted it is there but no longer active, `entitlement_missing` otherwise (product gone,
 *   or no longer granting it). An entitlement whose import-time expiry has passed lapsed on schedule and is
 *   not a mismatch. `expiry_differs` when it now ends more than `toleranceMs` earlier than then (later is
 *   fine: a renewal).
 * - Expectations, when given: the expected entitlement is active (unless `active: false`), the expiry (of
 *   that entitlement, else of the row's product) is not earlier than expected by more than the tolerance, and
 *   the row's product is in the expected environment (`environment_differs`). Without an expected
 *   environment, the import answer's (when its summary recorded one) is the expectation.
 */
export function compareState(outcome: VerifiedRow, state: CustomerState, expectations: CompareExpectations = { toleranceMs: DEFAULT_TOLERANCE_MS }): Mismatch[] {
  const out: Mismatch[] = [];
  const add = (kind: MismatchKind, expected: string, actual: string): void => {
    out.push({
      src: outcome.src,
      line: outcome.line,
      app_user_id: outcome.app_user_id,
      ...(outcome.product_id !== undefined ? { product_id: outcome.product_id } : {}),
      kind,
      expected,
      actual,
    });
  };
  const summary = outcome.subscriber;
  const now = expectations.now ?? Date.now();
  const tolerance = expectations.toleranceMs;

  if (!state.exists) {
    add('user_missing', `customer ${outcome.app_user_id} exists`, state.created_by_read ? 'no such customer (the v1 read has now created an empty one)' : 'no such customer');
    return out;
  }

  if (summary && state.original_app_user_id !== undefined && state.original_app_user_id !== summary.original_app_user_id) {
    add('transferred', `original_app_user_id ${summary.original_app_user_id}`, `original_app_user_id ${state.original_app_user_id}`);
  }

  const productId = outcome.product_id;
  const rowProducts = productId ? state.products.filter((p) => productKeyMatches(p.id, productId)) : [];
  if (productId && rowProducts.length === 0) {
    add('product_missing', `product ${productId}`, `not among the customer's products (${listIds(state.products.map((p) => p.id))})`);
  }

  const checkEntitlement = (id: string, thenExpires: string | null | undefined, grantingProduct: string | undefined, origin: string): void => {
    const current = state.active_entitlements.find((e) => e.id === id);
    const expected = `${id} active${thenExpires === undefined ? '' : ` until ${thenExpires ?? 'forever'}`} (${origin})`;
    if (!current) {
      if (thenExpires !== undefined && thenExpires !== null && Date.parse(thenExpires) <= now) return; // lapsed on schedule
      const granting = grantingProduct ? state.products.filter((p) => productKeyMatches(p.id, grantingProduct)) : [];
      if (granting.length > 0 && !granting.some((p) => p.active)) {
        add('entitlement_inactive', expected, `${id} inactive: ${grantingProduct} ${expiryText(latestExpiry(granting))}`);
      } else {
        add('entitlement_missing', expected, `${id} not granted${grantingProduct && granting.length === 0 ? `; ${grantingProduct} is not among the customer's products` : ''}`);
      }
      return;
    }
    if (thenExpires !== undefined && earlierBeyond(current.expires_at, thenExpires, tolerance)) {
      add('expiry_differs', `${id} expires ${thenExpires ?? 'never'} (${origin})`, `${id} expires ${current.expires_at ?? 'never'}`);
    }
  };

  const importEntitlements = summary?.active_entitlements ?? [];
  for (const e of importEntitlements) checkEntitlement(e.id, e.expires_date, e.product_identifier, 'import answer');

  if (expectations.entitlement !== undefined && expectations.active !== false) {
    const alreadyChecked = importEntitlements.some((e) => e.id === expectations.entitlement);
    if (!alreadyChecked) checkEntitlement(expectations.entitlement, expectations.expiresAt, productId, 'expected');
    else if (expectations.expiresAt !== undefined) {
      const current = state.active_entitlements.find((e) => e.id === expectations.entitlement);
      if (current && earlierBeyond(current.expires_at, expectations.expiresAt, tolerance)) {
        add('expiry_differs', `${expectations.entitlement} expires ${expectations.expiresAt} (expected)`, `${expectations.entitlement} expires ${current.expires_at ?? 'never'}`);
      }
    }
  } else if (expectations.expiresAt !== undefined && expectations.entitlement === undefined && rowProducts.length > 0 && expectations.active !== false) {
    const latest = latestExpiry(rowProducts);
    if (earlierBeyond(latest, expectations.expiresAt, tolerance)) add('expiry_differs', `${productId} expires ${expectations.expiresAt} (expected)`, `${productId} ${expiryText(latest)}`);
  }

  const expectedEnvironment = expectations.environment ?? importEnvironment(summary);
  if (expectedEnvironment !== undefined && rowProducts.length > 0) {
    const known = rowProducts.map((p) => p.environment).filter((e): e is 'production' | 'sandbox' => e !== undefined);
    if (known.length > 0 && !known.includes(expectedEnvironment as 'production' | 'sandbox')) {
      add('environment_differs', `${productId} in ${expectedEnvironment}${expectations.environment === undefined ? ' (import answer)' : ''}`, `${productId} in ${[...new Set(known)].join(', ')}`);
    }
  }
  return out;
}

/** Reads every succeeded row's user once and compares; see compareState. */
export async function verifyRun(opts: VerifyOptions): Promise<VerifyResult> {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new Error(`concurrency must be a positive integer (got ${String(opts.concurrency)})`);
  const tolerance = opts.toleranceMs ?? DEFAULT_TOLERANCE_MS;
  const expectationsOf = opts.expectations ?? rowExpectations;

  // Only what the comparison needs is kept per row: a few hundred bytes each.
  const byUser = new Map<string, { row: VerifiedRow; expect: RowExpectations | undefined }[]>();
  for await (const outcome of opts.ledger.outcomes()) {
    if (outcome.status !== 'succeeded') continue;
    const row: VerifiedRow = {
      src: outcome.src,
      line: outcome.line,
      app_user_id: outcome.app_user_id,
      ...(outcome.product_id !== undefined ? { product_id: outcome.product_id } : {}),
      ...(outcome.subscriber !== undefined ? { subscriber: outcome.subscriber } : {}),
    };
    let rows = byUser.get(outcome.app_user_id);
    if (!rows) {
      rows = [];
      byUser.set(outcome.app_user_id, rows);
    }
    rows.push({ row, expect: expectationsOf(outcome) });
  }

  const total = byUser.size;
  const limit = pLimit(opts.concurrency);
  const mismatches: Mismatch[] = [];
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
          for (const { row } of rows) mismatches.push({ ...rowKey(row), kind: 'read_failed', expected: 'the customer could be read', actual });
        } else {
          const now = opts.now?.() ?? Date.now();
          for (const { row, expect } of rows) {
            const found = compareState(row, result.state, { ...expect, toleranceMs: tolerance, now });
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
  return { checked, users, matched, mismatches, ...(aborted ? { aborted } : {}) };
}

/** The expected_* values an outcome carries (`expect`), read defensively so any shape of it is safe. */
export function rowExpectations(outcome: Outcome): RowExpectations | undefined {
  const raw = (outcome as unknown as { expect?: unknown }).expect;
  if (typeof raw !== 'object' || raw === null) return undefined;
  const e = raw as Record<string, unknown>;
  const out: RowExpectations = {};
  if (typeof e.entitlement === 'string' && e.entitlement !== '') out.entitlement = e.entitlement;
  if (typeof e.expiresAt === 'string' && !Number.isNaN(Date.parse(e.expiresAt))) out.expiresAt = e.expiresAt;
  if (typeof e.environment === 'string' && e.environment !== '') out.environment = e.environment;
  if (typeof e.active === 'boolean') out.active = e.active;
  return Object.keys(out).length > 0 ? out : undefined;
}

function rowKey(row: VerifiedRow): Pick<Mismatch, 'src' | 'line' | 'app_user_id' | 'product_id'> {
  return { src: row.src, line: row.line, app_user_id: row.app_user_id, ...(row.product_id !== undefined ? { product_id: row.product_id } : {}) };
}

/** The import answer's environment for the row's product, when the summary recorded it (`product.is_sandbox`). */
function importEnvironment(summary: SubscriberSummary | undefined): string | undefined {
  const product = (summary as unknown as { product?: { is_sandbox?: unknown } } | undefined)?.product;
  return typeof product?.is_sandbox === 'boolean' ? (product.is_sandbox ? 'sandbox' : 'production') : undefined;
}

const toMs = (iso: string | null): number => (iso === null ? Infinity : Date.parse(iso));

/** `actual` ends more than `tolerance` before `expected` (null = never ends). Unparseable dates never differ. */
function earlierBeyond(actual: string | null, expected: string | null, tolerance: number): boolean {
  const a = toMs(actual);
  const e = toMs(expected);
  if (Number.isNaN(a) || Number.isNaN(e)) return false;
  return a < e - tolerance;
}

function latestExpiry(products: CustomerState['products']): string | null {
  let best: string | null | undefined;
  for (const p of products) {
    if (p.expires_at === null) return null;
    if (best === undefined || toMs(p.expires_at) > toMs(best)) best = p.expires_at;
  }
  return best ?? null;
}

function expiryText(expires: string | null): string {
  return expires === null ? 'never expires' : `expires ${expires}`;
}

function listIds(ids: string[]): string {
  if (ids.length === 0) return 'none';
  const unique = [...new Set(ids)];
  return unique.length > 5 ? `${unique.slice(0, 5).join(', ')}, …` : unique.join(', ');
}
