// The App Store purchases a row's fetch token holds, as the purchase index keys them (ledger/purchaseIndex.ts):
// the environment and each original transaction id. Tokens that cannot be read hold none that can be told, and
// Xcode's StoreKit testing numbers its own ("0") purchases, which mean nothing across users: neither enters it.
import type { Platform } from '../revenuecat/fields.js';
import { readAppleToken, type AppleReading } from './readToken.js';

const APPLE: ReadonlySet<Platform> = new Set<Platform>(['ios', 'macos', 'uikitformac']);

export interface PurchaseIdentity {
  environment: string;
  originalTransactionId: string;
}

export function applePurchaseIds(platform: Platform, token: string): PurchaseIdentity[] {
  return APPLE.has(platform) ? purchaseIdsOf(readAppleToken(token)) : [];
}

/** The same, of a token already read (the ingester reads each App Store token once). */
export function purchaseIdsOf(reading: AppleReading): PurchaseIdentity[] {
  if (reading.kind === 'unread' || reading.environment === 'xcode') return [];
  return reading.originalTransactionIds.map((originalTransactionId) => ({ environment: reading.environment, originalTransactionId }));
}
