// App Store purchases read from a fetch token, granted as RevenueCat grants them: RevenueCat identifies an App
// Store purchase by its ORIGINAL TRANSACTION ID (not by the receipt's bytes, which differ between two receipts
// of one Apple ID), and when a second App User ID posts a purchase another one holds, its project's restore
// behaviour decides: "transfer to new App User ID" (the default) moves it silently, "transfer if there are no
// active subscriptions" moves it only when the holder has none active, "keep with original App User ID"
// refuses (the SDK's receipt-already-in-use error, 7102). Every move is recorded for tests.
import type { AppleTokenContents, AppleTransaction } from './appleContents.js';
import { isSandboxEnvironment } from './appleToken.js';
import { CODES } from './codes.js';
import { apiError, type ApiResponse } from './responses.js';
import type { ApplePurchaseInput, StoredSubscriber, SubscriberStore } from './store.js';

export const RESTORE_BEHAVIORS = ['transfer', 'transfer_if_no_active', 'keep'] as const;
export type RestoreBehavior = (typeof RESTORE_BEHAVIORS)[number];

/** One purchase moved from one App User ID to another (GET /_sandbox/transfers, sandbox.transfers()). */
export interface TransferRecord {
  originalTransactionId: string;
  /** The products the previous holder lost. */
  productIds: string[];
  /** The App User ID that held it (the id its subscriber was created under). */
  from: string;
  /** The App User ID that posted it. */
  to: string;
  atMs: number;
}

/** What POST /v1/receipts made of App Store fetch tokens (stats `appleReceipts`). */
export interface AppleReceiptStats {
  /** PKCS#7 app receipts read (whatever the answer). */
  receipts: number;
  /** StoreKit 2 signed transactions read. */
  signedTransactions: number;
  /** iOS / macOS tokens that were neither: answered by the token scheme. */
  unread: number;
  /** Distinct original transaction ids granted since the last reset. */
  purchases: number;
}

export interface GrantContext {
  /** The Subscriber `store` of the request's platform (app_store or mac_app_store). */
  store: string;
  restoreBehavior: RestoreBehavior;
  nowMs: number;
}

export type GrantResult = { ok: true; transfers: TransferRecord[]; purchases: number } | { ok: false; response: ApiResponse };

export class ApplePurchases {
  // Who last took each purchase. Checked against the store before use: an admin deletion or refund since
  // leaves a stale entry that must not count as holding the purchase.
  private readonly holders = new Map<string, StoredSubscriber>();
  private log: TransferRecord[] = [];
  private counts = { receipts: 0, signedTransactions: 0, unread: 0 };

  constructor(private readonly store: SubscriberStore) {}

  /** Grants what the token holds to `subscriber`, moving purchases held by others per the restore behaviour. */
  grant(subscriber: StoredSubscriber, contents: AppleTokenContents, context: GrantContext): GrantResult {
    if (contents.kind === 'receipt') this.counts.receipts++;
    else this.counts.signedTransactions++;
    if (contents.kind === 'signed_transaction' && contents.transactions.length === 0) {
      return { ok: false, response: apiError(400, CODES.invalidReceipt, 'The signed transaction holds no transaction.') };
    }
    // A refunded (cancelled / revoked) transaction grants nothing, as RevenueCat shows no entitlement for it.
    const live = contents.transactions.filter((t) => t.revokedMs === undefined);
    const originals = [...new Set(live.map((t) => t.originalTransactionId))];
    const held = originals.flatMap((id) => {
      const holder = this.holderOf(id);
      return holder && holder !== subscriber ? [{ id, holder }] : [];
    });
    if (held.length > 0 && context.restoreBehavior !== 'transfer') {
      const refused = context.restoreBehavior === 'keep' || held.some(({ holder }) => hasActiveSubscription(holder, context.nowMs));
      if (refused) {
        return {
          ok: false,
          response: apiError(
            400,
            CODES.cannotTransfer,
            'The receipt is already in use by another subscriber and cannot be transferred (restore behaviour keeps purchases with their original App User ID).',
          ),
        };
      }
    }

    const transfers: TransferRecord[] = [];
    for (const { id, holder } of held) {
      const record = {
        originalTransactionId: id,
        productIds: this.store.removeOriginalTransaction(holder, id),
        from: holder.appUserId,
        to: subscriber.appUserId,
        atMs: context.nowMs,
      };
      transfers.push(record);
      this.log.push(record);
    }

    const environment = isSandboxEnvironment(contents.environment) ? 'sandbox' : 'production';
    for (const group of subscriptionsByProduct(live)) {
      const latest = group.latest;
      this.store.recordAppleSubscription(subscriber, { ...input(latest, context.store, environment), originalPurchaseDateMs: group.firstPurchaseMs }, latest.expiresDateMs ?? 0);
    }
    for (const t of live) if (t.expiresDateMs === undefined) this.store.recordAppleNonSubscription(subscriber, input(t, context.store, environment));
    for (const id of originals) this.holders.set(id, subscriber);

    // The Subscriber's Apple fields come from the receipt when it says; signed transactions do not carry them.
    const firstPurchase = Math.min(...live.map((t) => t.purchaseDateMs));
    const originalPurchase = contents.originalPurchaseDateMs ?? (Number.isFinite(firstPurchase) ? firstPurchase : undefined);
    if (originalPurchase !== undefined) subscriber.originalPurchaseDateMs = Math.min(subscriber.originalPurchaseDateMs ?? Infinity, originalPurchase);
    subscriber.originalApplicationVersion ??= contents.originalApplicationVersion ?? (live.length > 0 ? '1.0' : null);
    return { ok: true, transfers, purchases: originals.length };
  }

  /** An App Store token the sandbox could not read (it goes to the token scheme). */
  noteUnread(): void {
    this.counts.unread++;
  }

  stats(): AppleReceiptStats {
    return { ...this.counts, purchases: this.holders.size };
  }

  /** Every move since the last reset, oldest first. */
  transfers(): TransferRecord[] {
    return this.log.map((t) => ({ ...t, productIds: [...t.productIds] }));
  }

  get transferCount(): number {
    return this.log.length;
  }

  clear(): void {
    this.holders.clear();
    this.log = [];
    this.counts = { receipts: 0, signedTransactions: 0, unread: 0 };
  }

  private holderOf(originalTransactionId: string): StoredSubscriber | undefined {
    const holder = this.holders.get(originalTransactionId);
    return holder && this.store.holdsOriginalTransaction(holder, originalTransactionId) ? holder : undefined;
  }
}

function input(t: AppleTransaction, store: string, environment: ApplePurchaseInput['environment']): ApplePurchaseInput {
  return {
    productId: t.productId,
    store,
    transactionId: t.transactionId,
    originalTransactionId: t.originalTransactionId,
    purchaseDateMs: t.purchaseDateMs,
    originalPurchaseDateMs: t.purchaseDateMs,
    environment,
  };
}

/** A receipt lists every renewal of a subscription: per product, the transaction that expires last stands for it. */
function subscriptionsByProduct(transactions: AppleTransaction[]): { latest: AppleTransaction; firstPurchaseMs: number }[] {
  const groups = new Map<string, { latest: AppleTransaction; firstPurchaseMs: number }>();
  for (const t of transactions) {
    if (t.expiresDateMs === undefined) continue;
    const group = groups.get(t.productId);
    if (!group) groups.set(t.productId, { latest: t, firstPurchaseMs: t.purchaseDateMs });
    else {
      if ((t.expiresDateMs ?? 0) > (group.latest.expiresDateMs ?? 0)) group.latest = t;
      group.firstPurchaseMs = Math.min(group.firstPurchaseMs, t.purchaseDateMs);
    }
  }
  return [...groups.values()];
}

function hasActiveSubscription(subscriber: StoredSubscriber, nowMs: number): boolean {
  for (const s of subscriber.subscriptions.values()) if (s.expiresDateMs > nowMs) return true;
  return false;
}
