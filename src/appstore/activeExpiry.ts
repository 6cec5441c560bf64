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

/**
 * Per original transaction id of a read token (in its `originalTransactionIds` order), when the subscription ends:
 * the latest expiry among its transactions that were not revoked, or NaN when none has one (no subscription).
 */
export function subscriptionEnds(reading: Exclude<AppleReading, { kind: 'unread' }>): number[] {
  const ids = reading.originalTransactionIds;
  const ends = ids.map(() => Number.NaN);
  for (const p of reading.purchases) {
    if (p.expiresMs === undefined || p.revokedMs !== undefined) continue;
    const i = ids.length === 1 ? 0 : ids.indexOf(p.originalTransactionId);
    const known = ends[i] as number;
    if (Number.isNaN(known) || p.expiresMs > known) ends[i] = p.expiresMs;
  }
  return ends;
}

/** The soonest of these ends that is later than `now` (NaN, no subscription, never is), or undefined. */
export function soonestAfter(ends: readonly number[], now: number): number | undefined {
  let soonest: number | undefined;
  for (const end of ends) if (end > now && (soonest === undefined || end < soonest)) soonest = end;
  return soonest;
}

/** Epoch ms of the soonest expiry among the token's active subscriptions, or undefined when none is active. */
export function soonestActiveExpiry(reading: AppleReading, now: number): number | undefined {
  return reading.kind === 'unread' ? undefined : soonestAfter(subscriptionEnds(reading), now);
}
