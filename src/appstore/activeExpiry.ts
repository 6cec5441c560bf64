// When the soonest of the active subscriptions an App Store token holds expires: what places an App Store row on
// the run's priority scale (ingest/tokenExpiry.ts: expiryPriority), as a Google row's export expiry places it, so
// the rows of both stores whose subscriptions run out first are sent first.
//
// A receipt lists every transaction of a subscription, each renewal with its own expiry, under one original
// transaction id (a signed transaction is one of them). So, per original transaction id, the subscription runs
// until the latest expiry among its transactions that were not revoked (receipt 1712, a refund; signed
// transaction revocationDate): a refunded renewal gives no time. It is active when that is later than `now`, and
// the token's expiry is the soonest among its active subscriptions. Purchases without an expiry (consumables,
// non-consumables) are no subscription. An unread token, or one with nothing active, has none.
import type { AppleReading } from './readToken.js';

/** Epoch ms of the soonest expiry among the token's active subscriptions, or undefined when none is active. */
export function soonestActiveExpiry(reading: AppleReading, now: number): number | undefined {
  if (reading.kind === 'unread') return undefined;
  const until = new Map<string, number>();
  for (const p of reading.purchases) {
    if (p.expiresMs === undefined || p.revokedMs !== undefined) continue;
    const known = until.get(p.originalTransactionId);
    if (known === undefined || p.expiresMs > known) until.set(p.originalTransactionId, p.expiresMs);
  }
  let soonest: number | undefined;
  for (const expires of until.values()) if (expires > now && (soonest === undefined || expires < soonest)) soonest = expires;
  return soonest;
}
