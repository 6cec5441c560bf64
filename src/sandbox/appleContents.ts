// What the sandbox reads from an App Store fetch token (appleReceipt.ts, appleToken.ts), in one shape for
// both kinds, so that applePurchases.ts grants them alike.

export interface AppleTransaction {
  productId: string;
  transactionId: string;
  /** What RevenueCat identifies an App Store purchase by (the restore behaviour acts on it). */
  originalTransactionId: string;
  purchaseDateMs: number;
  /** Auto-renewable subscriptions only. */
  expiresDateMs: number | undefined;
  /** Cancellation (1712) or revocation date: a refunded purchase grants nothing. */
  revokedMs: number | undefined;
  quantity: number;
}

export interface AppleTokenContents {
  kind: 'receipt' | 'signed_transaction';
  /** `Production`, `ProductionSandbox`, `Sandbox`, `Xcode`. */
  environment: string;
  bundleId: string;
  /** Receipt creation date (12), or a signed transaction's signedDate. */
  createdMs: number | undefined;
  originalApplicationVersion: string | undefined;
  originalPurchaseDateMs: number | undefined;
  transactions: AppleTransaction[];
}
