// The v1 Subscriber object as RevenueCat's reference (GET /v1/subscribers) describes it field by field, with the
// response samples of the v1 API reference for the shapes the prose leaves open (nulls, the `other_purchases`
// map). Dates are ISO 8601 strings; RevenueCat writes them without milliseconds.

/** The reference's "The Subscriber Attribute object"; also the shape of each value of a POST's `attributes`. */
export interface SubscriberAttribute {
  value: string;
  updated_at_ms: number;
}

/** The reference's "The Entitlement object". `expires_date` is null for a lifetime grant (the v1 reference's sample). */
export interface EntitlementJson {
  expires_date: string | null;
  grace_period_expires_date: string | null;
  purchase_date: string;
  product_identifier: string;
}

/** The reference's "The Subscription object". The sandbox never sets the lifecycle dates, so they are null. */
export interface SubscriptionJson {
  expires_date: string;
  purchase_date: string;
  original_purchase_date: string;
  /** The reference: PURCHASED or FAMILY_SHARED; the sandbox only makes purchases. */
  ownership_type: 'PURCHASED';
  /** The reference: normal, trial or intro. */
  period_type: 'normal';
  store: string;
  is_sandbox: boolean;
  unsubscribe_detected_at: null;
  billing_issues_detected_at: null;
  grace_period_expires_date: null;
  refunded_at: null;
  auto_resume_date: null;
  /** Not in the reference (RevenueCat's answers carry it): the sandbox's stable id per fetch token. */
  store_transaction_id: string;
}

/** The reference's "The Non-Subscription object". */
export interface NonSubscriptionJson {
  id: string;
  purchase_date: string;
  store: string;
  is_sandbox: boolean;
  /** Not in the reference, as for subscriptions. */
  store_transaction_id: string;
}

/** The reference's "The Subscriber object". */
export interface SubscriberJson {
  original_app_user_id: string;
  /** iOS only: null until an Apple receipt was sent. */
  original_application_version: string | null;
  /** iOS only: null until an Apple receipt was sent. */
  original_purchase_date: string | null;
  management_url: string | null;
  first_seen: string;
  last_seen: string;
  entitlements: Record<string, EntitlementJson>;
  subscriptions: Record<string, SubscriptionJson>;
  non_subscriptions: Record<string, NonSubscriptionJson[]>;
  /** Deprecated (the reference: "See non_subscriptions"). */
  other_purchases: Record<string, { purchase_date: string }>;
  /** Only in answers to requests made with a secret key. */
  subscriber_attributes?: Record<string, SubscriberAttribute>;
}

/** The reference's "Response": the envelope of GET /v1/subscribers and of a successful POST /v1/receipts. */
export interface SubscriberEnvelope {
  request_date: string;
  request_date_ms: number;
  subscriber: SubscriberJson;
}
