// App Store rows ordered like Google's (issue 15): the soonest expiry among a token's active subscriptions, read
// from generated receipts and signed transactions, and its place on the one priority scale Google rows use.
// Needs no Redis: the queue order itself is in appleOrder.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { soonestActiveExpiry } from '../src/appstore/activeExpiry.js';
import { readAppleToken } from '../src/appstore/readToken.js';
import { rereadJob, type RereadRow } from '../src/ingest/reread.js';
import { expiryPriority, LOWEST_PRIORITY, rowPriority } from '../src/ingest/tokenExpiry.js';
import type { Platform } from '../src/revenuecat/fields.js';
import { appleSigner, type AppleSigner, type ReceiptPurchaseSpec } from './support/appleReceipts.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** whole seconds, as receipts hold dates */
const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const BUNDLE = 'com.example.app';

/** A subscription's renewals: one transaction per expiry, all under the first one's id. */
function renewals(original: number, expiries: number[], revoked: number[] = []): ReceiptPurchaseSpec[] {
  return expiries.map((expiresMs, i) => ({
    productId: `sub_${original}`,
    transactionId: String(original + i),
    originalTransactionId: String(original),
    purchaseMs: expiresMs - 30 * DAY,
    expiresMs,
    ...(revoked.includes(i) ? { cancellationMs: expiresMs - 20 * DAY } : { cancellationMs: null }),
  }));
}

describe('soonestActiveExpiry', () => {
  let signer: AppleSigner;
  beforeAll(async () => {
    signer = await appleSigner();
  });
  const receipt = async (purchases: ReceiptPurchaseSpec[], environment = 'Production'): Promise<string> =>
    signer.receipt({ environment, bundleId: BUNDLE, creationMs: NOW - DAY, purchases });
  const soonest = async (token: string | Promise<string>, now = NOW): Promise<number | undefined> => soonestActiveExpiry(readAppleToken(await token), now);

  it("takes each subscription's latest renewal, then the soonest of the active ones", async () => {
    const coins: ReceiptPurchaseSpec = { productId: 'coins', transactionId: '900', purchaseMs: NOW - 3 * DAY };
    const token = receipt([
      ...renewals(1000, [NOW - 50 * DAY, NOW - 20 * DAY, NOW + 10 * DAY]), // active until day 10
      ...renewals(2000, [NOW - 2 * DAY]), // lapsed
      ...renewals(3000, [NOW - 5 * DAY, NOW + 25 * DAY]), // active until day 25
      coins, // no expiry: no subscription
    ]);
    expect(await soonest(token)).toBe(NOW + 10 * DAY);
    // a day 11 later the first has lapsed and the second is the soonest active one
    expect(await soonest(token, NOW + 11 * DAY)).toBe(NOW + 25 * DAY);
    // expiring exactly now is no longer active
    expect(await soonest(token, NOW + 25 * DAY)).toBeUndefined();
  });

  it('counts a renewal billed before its period ends: the subscription runs until the renewal, not the period', async () => {
    // Apple bills a renewal up to a day early: the receipt then holds both periods, the current one ending in 6 hours
    const token = receipt([...renewals(1500, [NOW + 6 * HOUR, NOW + 30 * DAY + 6 * HOUR]), ...renewals(1600, [NOW + 9 * DAY])]);
    expect(await soonest(token)).toBe(NOW + 9 * DAY);
  });

  it('gives a refunded renewal no time: the subscription runs until its last renewal not refunded', async () => {
    // the renewal until day 3 was refunded (1712): the subscription lapsed on day -5, and day 40 is the soonest active
    const token = receipt([...renewals(4000, [NOW - 5 * DAY, NOW + 3 * DAY], [1]), ...renewals(5000, [NOW + 40 * DAY])]);
    expect(await soonest(token)).toBe(NOW + 40 * DAY);
    const unrefunded = receipt([...renewals(4000, [NOW - 5 * DAY, NOW + 3 * DAY]), ...renewals(5000, [NOW + 40 * DAY])]);
    expect(await soonest(unrefunded)).toBe(NOW + 3 * DAY);
  });

  it('reads StoreKit 2 signed transactions (fractional milliseconds, revocation) and sandbox receipts alike', async () => {
    const signed = (over: { expiresMs?: number; revocationMs?: number }): Promise<string> =>
      signer.signedTransaction({
        environment: 'Production',
        bundleId: BUNDLE,
        signedMs: NOW - HOUR,
        transactionId: '6001',
        originalTransactionId: '6000',
        productId: 'sub_6000',
        purchaseMs: NOW - 10 * DAY,
        type: 'Auto-Renewable Subscription',
        ...over,
      });
    expect(await soonest(signed({ expiresMs: NOW + 7 * DAY + 0.25 }))).toBe(NOW + 7 * DAY);
    expect(await soonest(signed({ expiresMs: NOW - DAY }))).toBeUndefined();
    expect(await soonest(signed({ expiresMs: NOW + 7 * DAY, revocationMs: NOW - HOUR }))).toBeUndefined();
    expect(await soonest(receipt(renewals(7000, [NOW + 2 * DAY]), 'ProductionSandbox'))).toBe(NOW + 2 * DAY);
  });

  it('has nothing for unread tokens and receipts without a subscription', async () => {
    expect(await soonest('not a receipt at all')).toBeUndefined();
    expect(await soonest(Buffer.from('{ "signature" = "x"; "purchase-info" = "y"; }').toString('base64'))).toBeUndefined();
    expect(await soonest(receipt([]))).toBeUndefined();
    expect(await soonest(receipt([{ productId: 'lifetime', transactionId: '8000', originalTransactionId: '8000', purchaseMs: NOW - DAY, expiresMs: null }]))).toBeUndefined();
  });
});

describe('one priority scale for both stores', () => {
  it('places an expiry where a Google row of the same expiry goes, an hour a step, soonest first', () => {
    for (const at of [NOW - 30 * DAY, NOW, NOW + 5 * DAY + 17 * 60_000, NOW + 400 * DAY]) {
      expect(expiryPriority(at)).toBe(rowPriority({ expires_at_ms: at, past_cutoff: false }));
      expect(expiryPriority(at + HOUR)).toBe(expiryPriority(at) + 1);
      expect(expiryPriority(at)).toBeGreaterThan(0);
      expect(expiryPriority(at)).toBeLessThan(LOWEST_PRIORITY);
    }
    // a Google token that expired 30 days ago races its cut-off (in 30 days): it goes before a subscription active for 5 more days
    expect(rowPriority({ expires_at_ms: NOW - 30 * DAY, past_cutoff: false })).toBeLessThan(expiryPriority(NOW + 5 * DAY));
    expect(rowPriority(undefined)).toBe(LOWEST_PRIORITY);
  });
});

describe('rows read again (retry, the reconcile pass)', () => {
  let signer: AppleSigner;
  beforeAll(async () => {
    signer = await appleSigner();
  });
  const read = (platform: Platform, fetchToken: string, lookup = false): Extract<RereadRow, { ok: true }> => ({
    ok: true,
    place: { src: 'apple.csv', line: 2, fp: 'fp' },
    platform,
    body: { app_user_id: 'ann', fetch_token: fetchToken },
    input: { platform, app_user_id: 'ann', fetch_token: fetchToken },
    ...(lookup ? { lookup: { transaction_id: '9000' } } : {}),
  });

  it('keep the place their active subscription gives them, as the ingest gave it', async () => {
    const active = await signer.receipt({ environment: 'Production', bundleId: BUNDLE, creationMs: NOW - DAY, purchases: renewals(9000, [NOW + 12 * DAY]) });
    const lapsed = await signer.receipt({ environment: 'Production', bundleId: BUNDLE, creationMs: NOW - DAY, purchases: renewals(9100, [NOW - 12 * DAY]) });
    expect(rereadJob('r', read('ios', active), NOW).priority).toBe(expiryPriority(NOW + 12 * DAY));
    expect(rereadJob('r', read('macos', active), NOW).priority).toBe(expiryPriority(NOW + 12 * DAY));
    expect(rereadJob('r', read('ios', lapsed), NOW).priority).toBeUndefined();
    // not an App Store token: a Stripe id, or a row looked up by its transaction id first
    expect(rereadJob('r', read('stripe', active), NOW).priority).toBeUndefined();
    expect(rereadJob('r', read('ios', active, true), NOW).priority).toBeUndefined();
  });
});
