// In-memory subscribers. Purchases are keyed so that re-sending the same receipt changes nothing new,
// like RevenueCat's own deduplication: a re-run or a crash-retry must be harmless against the sandbox too.
import { createHash } from 'node:crypto';
import type { SubscriberAttribute } from './contract/subscriber.js';

export type SandboxEnvironment = 'production' | 'sandbox';

export interface StoredSubscription {
  productId: string;
  purchaseDateMs: number;
  originalPurchaseDateMs: number;
  expiresDateMs: number;
  store: string;
  transactionId: string;
  /** Absent means production (token-scheme POSTs make production purchases; a sandbox App Store receipt or the admin patch changes it). */
  environment?: SandboxEnvironment;
  /** App Store purchases read from a receipt: what RevenueCat identifies the purchase by (transfers act on it). */
  originalTransactionId?: string;
}

export interface StoredNonSubscription {
  id: string;
  productId: string;
  purchaseDateMs: number;
  store: string;
  environment?: SandboxEnvironment;
  originalTransactionId?: string;
}

/** A product as the project's catalog (v2 GET …/products) knows it: one per (store, store identifier). */
export interface CatalogProduct {
  store: string;
  storeIdentifier: string;
  type: 'subscription' | 'non_consumable';
  createdMs: number;
}

/** What an admin patch of a purchase may change. */
export interface PurchasePatch {
  /** New expiry of the product's subscription (in the past = expired). Not for one-time purchases. */
  expiresDateMs?: number;
  environment?: SandboxEnvironment;
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

/** One App Store purchase read from a receipt or signed transaction (applePurchases.ts). */
export interface ApplePurchaseInput {
  productId: string;
  store: string;
  transactionId: string;
  originalTransactionId: string;
  purchaseDateMs: number;
  originalPurchaseDateMs: number;
  environment: SandboxEnvironment;
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
  // Products ever granted, for the v2 catalog. Kept when a subscriber or purchase is removed, as a real
  // project's products outlive its customers; cleared by reset.
  private readonly products = new Map<string, CatalogProduct>();

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
    this.noteProduct(purchase, 'subscription');
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
    this.noteProduct(purchase, 'non_consumable');
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

  /**
   * An App Store subscription read from a receipt. The furthest expiry wins: an older receipt posted after a
   * newer one must not turn the subscription back, as RevenueCat keeps the latest state it has seen.
   */
  recordAppleSubscription(subscriber: StoredSubscriber, purchase: ApplePurchaseInput, expiresDateMs: number): void {
    this.noteProduct({ store: purchase.store, productId: purchase.productId, purchaseDateMs: purchase.purchaseDateMs }, 'subscription');
    const previous = subscriber.subscriptions.get(purchase.productId);
    if (previous && previous.expiresDateMs > expiresDateMs) {
      previous.originalPurchaseDateMs = Math.min(previous.originalPurchaseDateMs, purchase.originalPurchaseDateMs);
      return;
    }
    subscriber.subscriptions.set(purchase.productId, {
      productId: purchase.productId,
      purchaseDateMs: purchase.purchaseDateMs,
      originalPurchaseDateMs: Math.min(previous?.originalPurchaseDateMs ?? Infinity, purchase.originalPurchaseDateMs),
      expiresDateMs,
      store: purchase.store,
      transactionId: purchase.transactionId,
      environment: purchase.environment,
      originalTransactionId: purchase.originalTransactionId,
    });
  }

  /** An App Store one-time purchase (consumable or not): one entry per transaction id, like a re-sent token. */
  recordAppleNonSubscription(subscriber: StoredSubscriber, purchase: ApplePurchaseInput): void {
    this.noteProduct({ store: purchase.store, productId: purchase.productId, purchaseDateMs: purchase.purchaseDateMs }, 'non_consumable');
    let purchases = subscriber.nonSubscriptions.get(purchase.productId);
    if (!purchases) {
      purchases = new Map();
      subscriber.nonSubscriptions.set(purchase.productId, purchases);
    }
    purchases.set(purchase.transactionId, {
      id: purchase.transactionId,
      productId: purchase.productId,
      purchaseDateMs: purchase.purchaseDateMs,
      store: purchase.store,
      environment: purchase.environment,
      originalTransactionId: purchase.originalTransactionId,
    });
  }

  /** Whether the subscriber still holds anything of an App Store purchase (admin removals and deletions count). */
  holdsOriginalTransaction(subscriber: StoredSubscriber, originalTransactionId: string): boolean {
    if (!this.distinct.has(subscriber)) return false;
    for (const s of subscriber.subscriptions.values()) if (s.originalTransactionId === originalTransactionId) return true;
    for (const purchases of subscriber.nonSubscriptions.values()) {
      for (const p of purchases.values()) if (p.originalTransactionId === originalTransactionId) return true;
    }
    return false;
  }

  /** Takes an App Store purchase away from a subscriber (it moved to another one). Returns the products it touched. */
  removeOriginalTransaction(subscriber: StoredSubscriber, originalTransactionId: string): string[] {
    const products = new Set<string>();
    for (const [productId, s] of subscriber.subscriptions) {
      if (s.originalTransactionId !== originalTransactionId) continue;
      subscriber.subscriptions.delete(productId);
      products.add(productId);
    }
    for (const [productId, purchases] of subscriber.nonSubscriptions) {
      for (const [id, p] of purchases) {
        if (p.originalTransactionId !== originalTransactionId) continue;
        purchases.delete(id);
        products.add(productId);
      }
      if (purchases.size === 0) subscriber.nonSubscriptions.delete(productId);
    }
    return [...products];
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

  /** Removes the subscriber and every id that points at it (its aliases). False when there was none. */
  delete(appUserId: string): boolean {
    const subscriber = this.byId.get(appUserId);
    if (!subscriber) return false;
    for (const [id, s] of this.byId) if (s === subscriber) this.byId.delete(id);
    this.distinct.delete(subscriber);
    return true;
  }

  /** Removes every purchase of a product (subscription and one-time). False when the subscriber had none. */
  removeProduct(subscriber: StoredSubscriber, productId: string): boolean {
    const hadSubscription = subscriber.subscriptions.delete(productId);
    const hadPurchases = subscriber.nonSubscriptions.delete(productId);
    return hadSubscription || hadPurchases;
  }

  /**
   * Changes a product's purchases in place: `expiresDateMs` moves the subscription's expiry, `environment`
   * applies to the subscription and every one-time purchase of the product. Returns why it could not.
   */
  patchProduct(subscriber: StoredSubscriber, productId: string, patch: PurchasePatch): 'ok' | 'no_such_product' | 'not_a_subscription' {
    const subscription = subscriber.subscriptions.get(productId);
    const purchases = subscriber.nonSubscriptions.get(productId);
    if (!subscription && !purchases) return 'no_such_product';
    if (patch.expiresDateMs !== undefined && !subscription) return 'not_a_subscription';
    if (subscription) {
      if (patch.expiresDateMs !== undefined) subscription.expiresDateMs = patch.expiresDateMs;
      if (patch.environment !== undefined) subscription.environment = patch.environment;
    }
    if (purchases && patch.environment !== undefined) for (const p of purchases.values()) p.environment = patch.environment;
    return 'ok';
  }

  /** Every product granted since the last reset, oldest first. */
  catalog(): CatalogProduct[] {
    return [...this.products.values()];
  }

  get size(): number {
    return this.distinct.size;
  }

  clear(): void {
    this.byId.clear();
    this.distinct.clear();
    this.products.clear();
  }

  private noteProduct(purchase: Pick<PurchaseInput, 'store' | 'productId' | 'purchaseDateMs'>, type: CatalogProduct['type']): void {
    const key = `${purchase.store}\u0000${purchase.productId}`;
    if (!this.products.has(key)) {
      this.products.set(key, { store: purchase.store, storeIdentifier: purchase.productId, type, createdMs: purchase.purchaseDateMs });
    }
  }

  private noteApple(subscriber: StoredSubscriber, purchase: PurchaseInput): void {
    if (!APPLE_STORES.has(purchase.store)) return;
    subscriber.originalPurchaseDateMs = Math.min(subscriber.originalPurchaseDateMs ?? Infinity, purchase.purchaseDateMs);
    subscriber.originalApplicationVersion ??= '1.0';
  }
}
