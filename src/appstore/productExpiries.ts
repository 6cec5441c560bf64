// When each subscription an Apple fetch token holds ends, as the token itself says: what `verify` holds RevenueCat's
// expiry against (verify/receiptExpiries.ts). Per product, the latest expiry among its purchases, because
// RevenueCat shows a subscription's newest period. A refunded or revoked purchase is left out: RevenueCat grants
// nothing for it, so its expiry promises nothing. Purchases that do not expire (consumables, non-consumables) have
// no expiry to compare and are left out too.
import { readAppleToken } from './readToken.js';

export interface ProductExpiry {
  productId: string;
  /** epoch ms (whole seconds in a receipt) */
  expiresMs: number;
}

/** The token's subscriptions and when each ends, in the order first met; undefined when the token cannot be read. */
export function productExpiries(token: string): ProductExpiry[] | undefined {
  const reading = readAppleToken(token);
  if (reading.kind === 'unread') return undefined;
  const latest = new Map<string, number>();
  for (const p of reading.purchases) {
    if (p.expiresMs === undefined || p.revokedMs !== undefined) continue;
    const before = latest.get(p.productId);
    if (before === undefined || p.expiresMs > before) latest.set(p.productId, p.expiresMs);
  }
  return [...latest].map(([productId, expiresMs]) => ({ productId, expiresMs }));
}
