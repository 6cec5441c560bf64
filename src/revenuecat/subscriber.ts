// The v1 Subscriber object (as RevenueCat's GET /v1/subscribers reference describes it; also the `subscriber`
// of a POST /v1/receipts response), its structural check, and the two reading rules of its fields that everything built on it shares
// (what "active" means for an expiry, which mapping key names a product). What we derive from it and keep per
// row is ../state/subscriberSummary.ts.

/** `store` values documented for subscriptions and non-subscriptions; kept open for stores added later. */
export type SubscriberStore = 'app_store' | 'mac_app_store' | 'play_store' | 'amazon' | 'stripe' | 'promotional' | (string & {});

export interface Entitlement {
  /** ISO 8601; may be in the past; null for a lifetime entitlement. */
  expires_date: string | null;
  grace_period_expires_date?: string | null;
  purchase_date?: string;
  /** The product that unlocked this entitlement. */
  product_identifier: string;
}

export interface Subscription {
  /** Latest known expiration (ISO 8601); null for some promotional grants. */
  expires_date: string | null;
  purchase_date?: string;
  original_purchase_date?: string;
  ownership_type?: 'PURCHASED' | 'FAMILY_SHARED' | (string & {});
  period_type?: 'normal' | 'trial' | 'intro' | (string & {});
  store?: SubscriberStore;
  is_sandbox?: boolean;
  unsubscribe_detected_at?: string | null;
  billing_issues_detected_at?: string | null;
  grace_period_expires_date?: string | null;
  refunded_at?: string | null;
  auto_resume_date?: string | null;
  store_transaction_id?: string;
}

export interface NonSubscription {
  /** Unique transaction identifier. */
  id: string;
  purchase_date?: string;
  store?: SubscriberStore;
  is_sandbox?: boolean;
  store_transaction_id?: string;
}

export interface SubscriberAttributeValue {
  value: string;
  updated_at_ms: number;
}

export interface Subscriber {
  original_app_user_id: string;
  /** iOS only; null until an iOS receipt is sent. */
  original_application_version?: string | null;
  original_purchase_date?: string | null;
  management_url?: string | null;
  first_seen?: string;
  last_seen?: string;
  /** Keyed by entitlement id. */
  entitlements: Record<string, Entitlement>;
  /** Keyed by product id (Google subscriptions may be keyed `productId:basePlanId`). */
  subscriptions: Record<string, Subscription>;
  /** Keyed by product id; each value lists the purchases of that product. */
  non_subscriptions: Record<string, NonSubscription[]>;
  /** Deprecated by RevenueCat: see non_subscriptions. */
  other_purchases?: Record<string, unknown>;
  /** Only present when the request used a secret key. */
  subscriber_attributes?: Record<string, SubscriberAttributeValue>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isStringOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

function isEntitlement(v: unknown): v is Entitlement {
  return isRecord(v) && isStringOrNull(v.expires_date) && typeof v.product_identifier === 'string';
}

function isSubscription(v: unknown): v is Subscription {
  // RevenueCat always sends expires_date; tolerate its absence (treated as null) rather than reject the row.
  return isRecord(v) && (v.expires_date === undefined || isStringOrNull(v.expires_date));
}

function isNonSubscription(v: unknown): v is NonSubscription {
  return isRecord(v) && (v.id === undefined || typeof v.id === 'string');
}

/**
 * Structural check of everything we read of a subscriber (the row's summary, the v1 customer state): the id,
 * and the three mappings with the fields of their members that we use. Unread fields are not checked.
 */
export function isSubscriber(v: unknown): v is Subscriber {
  if (!isRecord(v)) return false;
  if (typeof v.original_app_user_id !== 'string') return false;
  const { entitlements, subscriptions, non_subscriptions } = v;
  if (!isRecord(entitlements) || !Object.values(entitlements).every(isEntitlement)) return false;
  if (!isRecord(subscriptions) || !Object.values(subscriptions).every(isSubscription)) return false;
  if (!isRecord(non_subscriptions)) return false;
  return Object.values(non_subscriptions).every((list) => Array.isArray(list) && list.every(isNonSubscription));
}

/** Active = no expiry, or an expiry after `now`. An unparseable date counts as not active. */
export function isActive(expiresDate: string | null | undefined, now: number = Date.now()): boolean {
  if (expiresDate === null || expiresDate === undefined) return true;
  const t = Date.parse(expiresDate);
  return !Number.isNaN(t) && t > now;
}

/**
 * Does a mapping key name the product? Exact match, or a Google `productId:basePlanId` key for a bare product id.
 */
export function productKeyMatches(key: string, productId: string): boolean {
  return key === productId || (!productId.includes(':') && key.startsWith(`${productId}:`));
}
