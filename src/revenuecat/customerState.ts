// One customer's current state as the API tells it, in one shape whichever API answered: the customer reader
// builds it from v2's customer, entitlement, subscription and purchase lists, and normalizeV1 from a v1
// Subscriber object (a v1 read, or the subscriber a POST /v1/receipts answer carries).
import { isActive, type Subscriber } from './subscriber.js';

export interface CustomerState {
  exists: boolean;
  /** The customer's original app user id (v2: the customer object's `id`; v1: `original_app_user_id`). */
  original_app_user_id?: string;
  /** Entitlements active now, by lookup key (v1's entitlement identifier). expires_at: ISO 8601, null = never. */
  active_entitlements: { id: string; expires_at: string | null }[];
  /** Subscriptions and one-time purchases, by store product identifier; one-time purchases never expire. */
  products: { id: string; environment?: 'production' | 'sandbox'; active: boolean; expires_at: string | null }[];
  /** v1 only: this read created the subscriber (it did not exist before; `exists` is false). */
  created_by_read?: boolean;
}

/** The v1 subscriber as a CustomerState (without `exists`). */
export function normalizeV1(subscriber: Subscriber, now: number = Date.now()): Omit<CustomerState, 'exists'> {
  const active_entitlements = Object.entries(subscriber.entitlements)
    .filter(([, e]) => isActive(e.expires_date, now))
    .map(([id, e]) => ({ id, expires_at: e.expires_date ?? null }));
  const products: CustomerState['products'] = [];
  for (const [id, s] of Object.entries(subscriber.subscriptions)) {
    products.push({
      id,
      ...(typeof s.is_sandbox === 'boolean' ? { environment: s.is_sandbox ? ('sandbox' as const) : ('production' as const) } : {}),
      active: isActive(s.expires_date ?? null, now),
      expires_at: s.expires_date ?? null,
    });
  }
  for (const [id, list] of Object.entries(subscriber.non_subscriptions)) {
    const latest = list[list.length - 1];
    if (!latest) continue;
    products.push({
      id,
      ...(typeof latest.is_sandbox === 'boolean' ? { environment: latest.is_sandbox ? ('sandbox' as const) : ('production' as const) } : {}),
      active: true,
      expires_at: null,
    });
  }
  return { original_app_user_id: subscriber.original_app_user_id, active_entitlements, products };
}
