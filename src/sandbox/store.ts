// In-memory subscribers. Purchases are keyed so that re-sending the same receipt changes nothing new,
// like RevenueCat's own deduplication: a re-run or a crash-retry must be harmless against the sandbox too.
import { createHash } from 'node:crypto';
import type { SubscriberAttribute } from '../revenuecat/fields.js';

export interface StoredSubscription {
  productId: string;
  purchaseDateMs: number;
  originalPurchaseDateMs: number;
  expiresDateMs: number;
  store: string;
  transactionId: string;
}

export interface StoredNonSubscription {
  id: string;
  productId: string;
  purchaseDateMs: number;
  store: string;
}

export interface StoredSubscriber {
  appUserId: string;
  originalAppUserId: string;
  firstSeenMs: number;
  lastSeenMs: number;
  /** Apple only: set by the first App Store / Mac App Store receipt. */
  originalPurchaseDateMs: number | null;
  originalApplicationVersion: string | null;
  subscriptions: Map<string, StoredSubscription>;
  /** Per product, per transaction id. */
  nonSubscriptions: Map<string, Map<string, StoredNonSubscription>>;
  attributes: Map<string, SubscriberAttribute>;
}

export interface PurchaseInput {
  productId: string;
  fetchToken: string;
  store: string;
  purchaseDateMs: number;
}

const APPLE_STORES = new Set(['app_store', 'mac_app_store']);

/** Stable per token, so the same receipt always maps to the same transaction. */
export function transactionIdFor(fetchToken: string): string {
  return `sbx_${createHash('sha256').update(fetchToken).digest('hex').slice(0, 20)}`;
}

export class SubscriberStore {
  // Aliases point at the same object, so a transferred subscriber is found under both ids.
  private readonly byId = new Map<string, StoredSubscriber>();
  private readonly distinct = new Set<StoredSubscriber>();

  peek(appUserId: string): StoredSubscriber | undefined {
    return this.byId.get(appUserId);
  }

  getOrCreate(appUserId: string, nowMs: number): { subscriber: StoredSubscriber; created: boolean } {
    const existing = this.byId.get(appUserId);
    if (existing) return { subscriber: existing, created: false };
    const subscriber: StoredSubscriber = {
      appUserId,
      originalAppUserId: appUserId,
      firstSeenMs: nowMs,
      lastSeenMs: nowMs,
      originalPurchaseDateMs: null,
      originalApplicationVersion: null,
      subscriptions: new Map(),
      nonSubscriptions: new Map(),
      attributes: new Map(),
    };
    this.byId.set(appUserId, subscriber);
    this.distinct.add(subscriber);
    return { subscriber, created: true };
  }

  /** The subscriber becomes an alias of `originalAppUserId` (the receipt was transferred/restored to it). */
  alias(subscriber: StoredSubscriber, originalAppUserId: string): void {
    subscriber.originalAppUserId = originalAppUserId;
    if (!this.byId.has(originalAppUserId)) this.byId.set(originalAppUserId, subscriber);
  }

  recordSubscription(subscriber: StoredSubscriber, purchase: PurchaseInput, expiresDateMs: number): void {
    const previous = subscriber.subscriptions.get(purchase.productId);
    subscriber.subscriptions.set(purchase.productId, {
      productId: purchase.productId,
      purchaseDateMs: purchase.purchaseDateMs,
      originalPurchaseDateMs: Math.min(previous?.originalPurchaseDateMs ?? Infinity, purchase.purchaseDateMs),
      expiresDateMs,
      store: purchase.store,
      transactionId: transactionIdFor(purchase.fetchToken),
    });
    this.noteApple(subscriber, purchase);
  }

  recordNonSubscription(subscriber: StoredSubscriber, purchase: PurchaseInput): void {
    const id = transactionIdFor(purchase.fetchToken);
    let purchases = subscriber.nonSubscriptions.get(purchase.productId);
    if (!purchases) {
      purchases = new Map();
      subscriber.nonSubscriptions.set(purchase.productId, purchases);
    }
    if (!purchases.has(id)) {
      purchases.set(id, { id, productId: purchase.productId, purchaseDateMs: purchase.purchaseDateMs, store: purchase.store });
    }
    this.noteApple(subscriber, purchase);
  }

  /** Newer values win, by updated_at_ms, as RevenueCat resolves attributes sent from several places. */
  mergeAttributes(subscriber: StoredSubscriber, attributes: Record<string, SubscriberAttribute>): void {
    for (const [name, attribute] of Object.entries(attributes)) {
      const current = subscriber.attributes.get(name);
      if (!current || attribute.updated_at_ms >= current.updated_at_ms) {
        subscriber.attributes.set(name, { value: attribute.value, updated_at_ms: attribute.updated_at_ms });
      }
    }
  }

  get size(): number {
    return this.distinct.size;
  }

  clear(): void {
    this.byId.clear();
    this.distinct.clear();
  }

  private noteApple(subscriber: StoredSubscriber, purchase: PurchaseInput): void {
    if (!APPLE_STORES.has(purchase.store)) return;
    subscriber.originalPurchaseDateMs = Math.min(subscriber.originalPurchaseDateMs ?? Infinity, purchase.purchaseDateMs);
    subscriber.originalApplicationVersion ??= '1.0';
  }
}
