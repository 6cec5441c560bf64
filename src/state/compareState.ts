// Expected-state comparison: one row against its customer's state. The same rules judge the import answer
// (./importAnswer.ts) and, after the fact, the customer read again by `verify` (../verify/verifyRun.ts), which
// also holds an App Store row's subscriptions against what its receipt says (compareReceiptExpiries).
import type { ProductExpiry } from '../appstore/productExpiries.js';
import type { CustomerState } from '../revenuecat/customerState.js';
import { productKeyMatches } from '../revenuecat/subscriber.js';
import type { Environment, Expectations } from './expectations.js';
import { rowRef, type MismatchKind, type RowRef, type StateMismatch } from './mismatch.js';
import type { SubscriberSummary } from './subscriberSummary.js';

/** A row as compareState needs it: where it is, and what its import answer said (when it got one). */
export interface ImportedRow extends RowRef {
  subscriber?: SubscriberSummary;
}

/** A row's expectations (all optional) plus the comparison's settings. */
export interface CompareOptions extends Expectations {
  /** How much earlier than expected an expiry may be before it is `expiry_differs`. */
  toleranceMs: number;
  /** Epoch ms; default Date.now(). */
  now?: number;
}

export const DEFAULT_TOLERANCE_MS = 86_400_000;

/**
 * Compares one row with its user's current state. Pure: the caller did the I/O.
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
export function compareState(row: ImportedRow, state: CustomerState, expectations: CompareOptions = { toleranceMs: DEFAULT_TOLERANCE_MS }): StateMismatch[] {
  const out: StateMismatch[] = [];
  const add = (kind: MismatchKind, expected: string, actual: string): void => {
    out.push({ ...rowRef(row), kind, expected, actual });
  };
  const summary = row.subscriber;
  const now = expectations.now ?? Date.now();
  const tolerance = expectations.toleranceMs;

  if (!state.exists) {
    add('user_missing', `customer ${row.app_user_id} exists`, state.created_by_read ? 'no such customer (the v1 read has now created an empty one)' : 'no such customer');
    return out;
  }

  if (summary && state.original_app_user_id !== undefined && state.original_app_user_id !== summary.original_app_user_id) {
    add('transferred', `original_app_user_id ${summary.original_app_user_id}`, `original_app_user_id ${state.original_app_user_id}`);
  }

  const productId = row.product_id;
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
    if (earlierBeyond(latest, expectations.expiresAt, tolerance))
      add('expiry_differs', `${productId} expires ${expectations.expiresAt} (expected)`, `${productId} ${expiryText(latest)}`);
  }

  const expectedEnvironment = expectations.environment ?? importEnvironment(summary);
  if (expectedEnvironment !== undefined && rowProducts.length > 0) {
    const known = rowProducts.map((p) => p.environment).filter((e): e is Environment => e !== undefined);
    if (known.length > 0 && !known.includes(expectedEnvironment)) {
      add(
        'environment_differs',
        `${productId} in ${expectedEnvironment}${expectations.environment === undefined ? ' (import answer)' : ''}`,
        `${productId} in ${[...new Set(known)].join(', ')}`,
      );
    }
  }
  return out;
}

/**
 * Compares the subscriptions a row's receipt holds with the customer's, product by product. Pure, like
 * compareState, and meant to run next to it (a missing customer is compareState's `user_missing` alone).
 *
 * - `receipt_expiry_differs`: the customer's subscription ends more than `toleranceMs` before the receipt's
 *   latest expiry for that product. Later is fine: the subscription renewed after the receipt was made.
 * - `product_missing`: the receipt holds the subscription but the customer has no such product (it was moved to
 *   another user, refunded, or never granted), unless the row names that product: compareState reports it then.
 *
 * Each mismatch names the receipt's product (the row's own product_id may be another, or none).
 */
export function compareReceiptExpiries(row: RowRef, state: CustomerState, receipt: readonly ProductExpiry[], toleranceMs: number): StateMismatch[] {
  if (!state.exists) return [];
  const out: StateMismatch[] = [];
  for (const { productId, expiresMs } of receipt) {
    const at = { ...rowRef(row), product_id: productId };
    const until = new Date(expiresMs).toISOString();
    const products = state.products.filter((p) => productKeyMatches(p.id, productId));
    if (products.length === 0) {
      if (row.product_id !== productId) {
        out.push({
          ...at,
          kind: 'product_missing',
          expected: `product ${productId} (receipt: expires ${until})`,
          actual: `not among the customer's products (${listIds(state.products.map((p) => p.id))})`,
        });
      }
      continue;
    }
    const latest = latestExpiry(products);
    if (earlierBeyond(latest, until, toleranceMs)) {
      out.push({ ...at, kind: 'receipt_expiry_differs', expected: `${productId} expires ${until} (receipt)`, actual: `${productId} ${expiryText(latest)}` });
    }
  }
  return out;
}

/** The import answer's environment for the row's product, when the summary recorded it (`product.is_sandbox`). */
function importEnvironment(summary: SubscriberSummary | undefined): Environment | undefined {
  // Read defensively: summaries stored before `product` existed lack it.
  const product = (summary as { product?: { is_sandbox?: unknown } } | undefined)?.product;
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
