// The v2 objects (customer, customer.active_entitlement, subscription, purchase, entitlement, product, list,
// error), rendered from the same store the v1 POSTs fill. The v1 documents hold no v2 schema; the shapes follow
// RevenueCat's public API v2 reference as far as the pipeline reads them (README.md, "v2 reads"). Dates are
// epoch milliseconds, as v2 writes them.
//
// Like the real API, v2 names entitlements and products by the project's own ids (`entl…`, `prod…`), not by
// the lookup key / store identifier v1 uses: a reader maps them through GET …/entitlements and …/products.
import { createHash } from 'node:crypto';
import type { CatalogProduct, SandboxEnvironment, StoredSubscriber } from './store.js';
import { SANDBOX_ENTITLEMENT } from './view.js';

export interface V2List<T> {
  object: 'list';
  items: T[];
  /** Path and query of the next page, or null on the last one. */
  next_page: string | null;
  /** Path of the list itself. */
  url: string;
}

export interface V2ActiveEntitlement {
  object: 'customer.active_entitlement';
  entitlement_id: string;
  /** Epoch ms; null for a lifetime grant. */
  expires_at: number | null;
}

export interface V2Entitlement {
  object: 'entitlement';
  project_id: string;
  id: string;
  lookup_key: string;
  display_name: string;
  created_at: number;
}

export interface V2Product {
  object: 'product';
  id: string;
  store_identifier: string;
  type: 'subscription' | 'non_consumable';
  display_name: string | null;
  app_id: string;
  created_at: number;
}

export interface V2Subscription {
  object: 'subscription';
  id: string;
  customer_id: string;
  original_customer_id: string;
  /** The project's product id (`prod…`): see GET …/products for its store_identifier. */
  product_id: string;
  starts_at: number;
  current_period_starts_at: number;
  current_period_ends_at: number;
  /** Set once the subscription has ended. */
  ends_at: number | null;
  gives_access: boolean;
  pending_payment: boolean;
  auto_renewal_status: 'will_renew' | 'will_not_renew';
  status: 'active' | 'expired';
  presented_offering_id: null;
  entitlements: V2List<V2Entitlement>;
  environment: SandboxEnvironment;
  store: string;
  store_subscription_identifier: string;
  ownership: 'purchased';
  country: null;
  management_url: string | null;
}

export interface V2Purchase {
  object: 'purchase';
  id: string;
  customer_id: string;
  original_customer_id: string;
  product_id: string;
  purchased_at: number;
  quantity: number;
  status: 'owned';
  presented_offering_id: null;
  entitlements: V2List<V2Entitlement>;
  environment: SandboxEnvironment;
  store: string;
  store_purchase_identifier: string;
  ownership: 'purchased';
}

export interface V2Customer {
  object: 'customer';
  /** The customer's original app user id: reading through an alias answers the same customer. */
  id: string;
  project_id: string;
  first_seen_at: number;
  last_seen_at: number;
  last_seen_app_version: null;
  last_seen_country: null;
  last_seen_platform: null;
  last_seen_platform_version: null;
  active_entitlements: V2List<V2ActiveEntitlement>;
  experiment: null;
  attributes: V2List<{ object: 'customer.attribute'; name: string; value: string; updated_at: number }>;
}

export type V2ErrorType = 'parameter_error' | 'resource_missing' | 'authentication_error' | 'authorization_error' | 'rate_limit_error' | 'server_error' | 'invalid_request';

export interface V2Error {
  object: 'error';
  type: V2ErrorType;
  message: string;
  retryable: boolean;
  doc_url: string;
  param?: string;
  backoff_ms?: number;
}

export function v2Error(type: V2ErrorType, message: string, extra: { retryable?: boolean; param?: string; backoff_ms?: number } = {}): V2Error {
  return {
    object: 'error',
    type,
    message,
    retryable: extra.retryable ?? false,
    doc_url: `https://errors.rev.cat/${type.replace(/_/g, '-')}`,
    ...(extra.param !== undefined ? { param: extra.param } : {}),
    ...(extra.backoff_ms !== undefined ? { backoff_ms: extra.backoff_ms } : {}),
  };
}

const hash = (text: string, length: number): string => createHash('sha256').update(text).digest('hex').slice(0, length);

/** Stable ids in RevenueCat's style (`entl` / `prod` / `app` / `sub` / `purch` + hex). */
export const v2Ids = {
  entitlement: (lookupKey: string): string => `entl${hash(`entitlement:${lookupKey}`, 10)}`,
  product: (store: string, storeIdentifier: string): string => `prod${hash(`product:${store}:${storeIdentifier}`, 10)}`,
  app: (store: string): string => `app${hash(`app:${store}`, 10)}`,
  subscription: (transactionId: string): string => `sub${hash(`subscription:${transactionId}`, 14)}`,
  purchase: (transactionId: string): string => `purch${hash(`purchase:${transactionId}`, 14)}`,
};

export function entitlementObject(projectId: string): V2Entitlement {
  return {
    object: 'entitlement',
    project_id: projectId,
    id: v2Ids.entitlement(SANDBOX_ENTITLEMENT),
    lookup_key: SANDBOX_ENTITLEMENT,
    display_name: 'Premium',
    created_at: 0,
  };
}

export function productObject(product: CatalogProduct): V2Product {
  return {
    object: 'product',
    id: v2Ids.product(product.store, product.storeIdentifier),
    store_identifier: product.storeIdentifier,
    type: product.type,
    display_name: null,
    app_id: v2Ids.app(product.store),
    created_at: product.createdMs,
  };
}

/** One page of `items` (sorted by the caller) after `startingAfter`, with the next page's link. */
export function page<T extends { id: string }>(items: T[], url: string, query: { limit: number; startingAfter: string | undefined }): V2List<T> {
  let start = 0;
  if (query.startingAfter !== undefined) {
    const at = items.findIndex((i) => i.id === query.startingAfter);
    start = at < 0 ? items.length : at + 1;
  }
  const slice = items.slice(start, start + query.limit);
  const last = slice[slice.length - 1];
  const more = start + query.limit < items.length && last !== undefined;
  return {
    object: 'list',
    items: slice,
    next_page: more ? `${url}?starting_after=${encodeURIComponent(last.id)}&limit=${query.limit}` : null,
    url,
  };
}

/** Active entitlements: the sandbox's one entitlement, when any subscription is unexpired or any one-time purchase exists. */
export function activeEntitlements(sub: StoredSubscriber, nowMs: number): (V2ActiveEntitlement & { id: string })[] {
  // undefined: not active; null: never expires (a one-time purchase wins over any subscription).
  let expires: number | null | undefined;
  for (const s of sub.subscriptions.values()) {
    if (s.expiresDateMs > nowMs && s.expiresDateMs > (expires ?? -Infinity)) expires = s.expiresDateMs;
  }
  for (const purchases of sub.nonSubscriptions.values()) if (purchases.size > 0) expires = null;
  if (expires === undefined) return [];
  const id = v2Ids.entitlement(SANDBOX_ENTITLEMENT);
  return [{ object: 'customer.active_entitlement', entitlement_id: id, expires_at: expires, id }];
}

/** The list items without the `id` used for paging (active entitlements have none of their own in v2). */
export function stripIds<T extends { id: string }>(list: V2List<T>): V2List<Omit<T, 'id'>> {
  return { ...list, items: list.items.map(({ id: _id, ...rest }) => rest) };
}

const MANAGEMENT_URLS: Record<string, string> = {
  app_store: 'https://apps.apple.com/account/subscriptions',
  mac_app_store: 'https://apps.apple.com/account/subscriptions',
  play_store: 'https://play.google.com/store/account/subscriptions',
};

function entitlementList(projectId: string, url: string): V2List<V2Entitlement> {
  return { object: 'list', items: [entitlementObject(projectId)], next_page: null, url };
}

export function subscriptions(sub: StoredSubscriber, projectId: string, nowMs: number, base: string): V2Subscription[] {
  return [...sub.subscriptions.values()]
    .map((s): V2Subscription => {
      const active = s.expiresDateMs > nowMs;
      const id = v2Ids.subscription(s.transactionId);
      return {
        object: 'subscription',
        id,
        customer_id: sub.originalAppUserId,
        original_customer_id: sub.originalAppUserId,
        product_id: v2Ids.product(s.store, s.productId),
        starts_at: s.originalPurchaseDateMs,
        current_period_starts_at: s.purchaseDateMs,
        current_period_ends_at: s.expiresDateMs,
        ends_at: active ? null : s.expiresDateMs,
        gives_access: active,
        pending_payment: false,
        auto_renewal_status: active ? 'will_renew' : 'will_not_renew',
        status: active ? 'active' : 'expired',
        presented_offering_id: null,
        entitlements: entitlementList(projectId, `${base}/subscriptions/${id}/entitlements`),
        environment: s.environment ?? 'production',
        store: s.store,
        store_subscription_identifier: s.transactionId,
        ownership: 'purchased',
        country: null,
        management_url: active ? (MANAGEMENT_URLS[s.store] ?? null) : null,
      };
    })
    .sort((a, b) => a.starts_at - b.starts_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function purchases(sub: StoredSubscriber, projectId: string, base: string): V2Purchase[] {
  const out: V2Purchase[] = [];
  for (const list of sub.nonSubscriptions.values()) {
    for (const p of list.values()) {
      const id = v2Ids.purchase(p.id);
      out.push({
        object: 'purchase',
        id,
        customer_id: sub.originalAppUserId,
        original_customer_id: sub.originalAppUserId,
        product_id: v2Ids.product(p.store, p.productId),
        purchased_at: p.purchaseDateMs,
        quantity: 1,
        status: 'owned',
        presented_offering_id: null,
        entitlements: entitlementList(projectId, `${base}/purchases/${id}/entitlements`),
        environment: p.environment ?? 'production',
        store: p.store,
        store_purchase_identifier: p.id,
        ownership: 'purchased',
      });
    }
  }
  return out.sort((a, b) => a.purchased_at - b.purchased_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function customer(sub: StoredSubscriber, projectId: string, nowMs: number, base: string, pageSize: number): V2Customer {
  const entitlements = page(activeEntitlements(sub, nowMs), `${base}/active_entitlements`, { limit: pageSize, startingAfter: undefined });
  return {
    object: 'customer',
    id: sub.originalAppUserId,
    project_id: projectId,
    first_seen_at: sub.firstSeenMs,
    last_seen_at: sub.lastSeenMs,
    last_seen_app_version: null,
    last_seen_country: null,
    last_seen_platform: null,
    last_seen_platform_version: null,
    active_entitlements: stripIds(entitlements),
    experiment: null,
    attributes: {
      object: 'list',
      items: [...sub.attributes].map(([name, a]) => ({ object: 'customer.attribute' as const, name, value: a.value, updated_at: a.updated_at_ms })),
      next_page: null,
      url: `${base}/attributes`,
    },
  };
}
