// The sandbox reads App Store fetch tokens as RevenueCat does (issue 15): real PKCS#7 app receipts (DER, and
// Xcode's BER with indefinite lengths) and StoreKit 2 signed transactions become the subscriber's subscriptions,
// non-subscriptions and entitlement; a purchase, identified by its original transaction id, moves to the App
// User ID that posts it last under the default restore behaviour, and stays put under "keep with original".
// The expected values come from Apple's own verifyReceipt answer and from the signed transactions' payloads,
// not from the sandbox's reader.
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox, type SandboxOptions } from '../src/sandbox/index.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'apple-receipts');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8').trim();
const KEY = 'appl_sandbox_key';

interface VerifyReceiptPurchase {
  product_id: string;
  transaction_id: string;
  original_transaction_id: string;
  purchase_date_ms: string;
  expires_date_ms?: string;
}
const verifyReceipt = JSON.parse(fixture('revenuecat-sandbox-receipt.verifyReceipt.json')) as {
  receipt: { bundle_id: string; receipt_type: string; original_purchase_date_ms: string; original_application_version: string; in_app: VerifyReceiptPurchase[] };
};

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

async function start(options: SandboxOptions = {}): Promise<Sandbox> {
  sandbox = await startSandbox(options);
  return sandbox;
}

interface Reply {
  status: number;
  directive: string | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

async function post(sb: Sandbox, appUserId: string, fetchToken: string, platform = 'ios'): Promise<Reply> {
  const res = await fetch(`${sb.url}/v1/receipts`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}`, 'X-Platform': platform },
    body: JSON.stringify({ app_user_id: appUserId, fetch_token: fetchToken, create_events: false, should_update_last_seen_fields: false }),
  });
  return { status: res.status, directive: res.headers.get('x-sandbox-directive'), body: await res.json() };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function subscriber(sb: Sandbox, appUserId: string): Promise<any> {
  const res = await fetch(`${sb.url}/v1/subscribers/${encodeURIComponent(appUserId)}`, { headers: { Authorization: `Bearer ${KEY}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { subscriber: unknown }).subscriber;
}

/** RevenueCat's date format: no milliseconds. */
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A StoreKit 2 signed transaction, signed by a throw-away key (the sandbox, like RevenueCat's import, reads its payload). */
function signedTransaction(payload: Record<string, unknown>): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', x5c: ['MIIB'] })).toString('base64url');
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const signature = sign('sha256', Buffer.from(`${header}.${body}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${header}.${body}.${signature.toString('base64url')}`;
}

const MONTHLY = 'com.revenuecat.monthly_4.99.1_week_intro';
const ANNUAL = 'com.revenuecat.annual_39.99.2_week_intro';
const SHARED_ORIGINAL = '1000000692878476';

describe('App Store receipts read by the sandbox', () => {
  it("RevenueCat's sample receipt (DER) gives the subscriptions Apple's verifyReceipt answer implies", async () => {
    const sb = await start();
    const reply = await post(sb, 'rc_user', fixture('revenuecat-sandbox-receipt.b64'));
    expect(reply.status).toBe(200);
    expect(reply.directive).toBe('apple_receipt');

    // Per product, the transaction that expires last stands for the subscription (every renewal is listed).
    const expected = new Map<string, { latest: VerifyReceiptPurchase; firstPurchaseMs: number }>();
    for (const p of verifyReceipt.receipt.in_app) {
      expect(p.expires_date_ms).toBeDefined();
      const entry = expected.get(p.product_id);
      if (!entry) expected.set(p.product_id, { latest: p, firstPurchaseMs: Number(p.purchase_date_ms) });
      else {
        if (Number(p.expires_date_ms) > Number(entry.latest.expires_date_ms)) entry.latest = p;
        entry.firstPurchaseMs = Math.min(entry.firstPurchaseMs, Number(p.purchase_date_ms));
      }
    }
    const got = await subscriber(sb, 'rc_user');
    expect(Object.keys(got.subscriptions).sort()).toEqual([...expected.keys()].sort());
    for (const [productId, { latest, firstPurchaseMs }] of expected) {
      expect(got.subscriptions[productId]).toMatchObject({
        expires_date: iso(Number(latest.expires_date_ms)),
        purchase_date: iso(Number(latest.purchase_date_ms)),
        original_purchase_date: iso(firstPurchaseMs),
        store: 'app_store',
        is_sandbox: verifyReceipt.receipt.receipt_type !== 'Production',
        store_transaction_id: latest.transaction_id,
      });
    }
    expect(got.non_subscriptions).toEqual({});
    const furthest = [...expected.values()].reduce((a, b) => (Number(a.latest.expires_date_ms) >= Number(b.latest.expires_date_ms) ? a : b)).latest;
    expect(got.entitlements.premium).toMatchObject({ product_identifier: furthest.product_id, expires_date: iso(Number(furthest.expires_date_ms)) });
    expect(got.original_application_version).toBe(verifyReceipt.receipt.original_application_version);
    expect(got.original_purchase_date).toBe(iso(Number(verifyReceipt.receipt.original_purchase_date_ms)));
    expect(sb.stats().appleReceipts).toEqual({ receipts: 1, signedTransactions: 0, unread: 0, purchases: 1 });
  });

  it('a receipt with a consumable: the consumable is a non-subscription, the renewals one subscription (macOS store)', async () => {
    const sb = await start();
    expect((await post(sb, 'mac_user', fixture('tamtamchik-mbaasy-demo-receipt.b64'), 'macos')).status).toBe(200);
    const got = await subscriber(sb, 'mac_user');
    expect(Object.keys(got.subscriptions)).toEqual(['monthly']);
    expect(got.subscriptions.monthly).toMatchObject({ store: 'mac_app_store', is_sandbox: true });
    expect(Object.keys(got.non_subscriptions)).toEqual(['consumable']);
    expect(got.non_subscriptions.consumable).toHaveLength(1);
    expect(got.non_subscriptions.consumable[0]).toMatchObject({ store: 'mac_app_store', is_sandbox: true });
    // A one-time purchase beats any subscription for the entitlement.
    expect(got.entitlements.premium).toMatchObject({ product_identifier: 'consumable', expires_date: null });
  });

  it("Xcode's BER receipt and its signed transaction give the same subscription; an empty receipt grants nothing", async () => {
    const jws = fixture('apple-xcode-signed-transaction');
    const payload = JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString('utf8')) as {
      productId: string;
      expiresDate: number;
      purchaseDate: number;
      transactionId: string;
    };
    const sb = await start();

    const expectedSubscription = {
      // The receipt holds whole seconds; the JWS fractional milliseconds: both render to the same second.
      expires_date: iso(Math.floor(payload.expiresDate)),
      purchase_date: iso(Math.floor(payload.purchaseDate)),
      is_sandbox: true,
      store_transaction_id: payload.transactionId,
    };
    const fromReceipt = await post(sb, 'xcode_receipt', fixture('apple-xcode-app-receipt-with-transaction'));
    expect(fromReceipt.status).toBe(200);
    expect(Object.keys(fromReceipt.body.subscriber.subscriptions)).toEqual([payload.productId]);
    expect(fromReceipt.body.subscriber.subscriptions[payload.productId]).toMatchObject(expectedSubscription);

    // Both describe one purchase (Xcode's original transaction id "0"): posted for another user, it moves there.
    const fromJws = await post(sb, 'xcode_jws', jws);
    expect(fromJws.status).toBe(200);
    expect(fromJws.directive).toBe('apple_signed_transaction');
    expect(Object.keys(fromJws.body.subscriber.subscriptions)).toEqual([payload.productId]);
    expect(fromJws.body.subscriber.subscriptions[payload.productId]).toMatchObject(expectedSubscription);
    expect((await subscriber(sb, 'xcode_receipt')).subscriptions).toEqual({});
    expect(sb.transfers()).toEqual([{ originalTransactionId: '0', productIds: [payload.productId], from: 'xcode_receipt', to: 'xcode_jws', atMs: expect.any(Number) }]);

    const empty = await post(sb, 'xcode_empty', fixture('apple-xcode-app-receipt-empty'));
    expect(empty.status).toBe(200);
    expect(empty.body.subscriber).toMatchObject({ subscriptions: {}, non_subscriptions: {}, entitlements: {} });
    expect(sb.stats().appleReceipts).toMatchObject({ receipts: 2, signedTransactions: 1, unread: 0 });
  });

  it('a signed payload with no transaction is refused (7103); unreadable and non-Apple tokens keep the token scheme', async () => {
    const sb = await start();
    const noTransaction = await post(sb, 'mock_user', fixture('apple-mock-signed-transaction.jws'));
    expect(noTransaction.status).toBe(400);
    expect(noTransaction.body.code).toBe(7103);
    expect(sb.peekSubscriber('mock_user')).toBeUndefined();

    // A receipt cut in half is unreadable, not a server error: the token scheme answers it.
    const whole = fixture('revenuecat-sandbox-receipt.b64');
    const truncated = await post(sb, 'cut_user', whole.slice(0, Math.floor(whole.length / 8) * 4));
    expect(truncated.status).toBe(200);
    expect(truncated.directive).toBe('none');

    const scheme = await post(sb, 'scheme_user', 'MIIT-not-really-sbx-expired');
    expect(scheme.status).toBe(200);
    expect(scheme.directive).toBe('expired');
    expect(scheme.body.subscriber.subscriptions['sandbox.monthly'].expires_date).toBe('2023-02-01T00:00:00Z');
    // The same receipt bytes from an Android app are a Google token: not read.
    const android = await fetch(`${sb.url}/v1/receipts`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}`, 'X-Platform': 'android' },
      body: JSON.stringify({
        app_user_id: 'droid',
        product_id: 'gold',
        fetch_token: fixture('revenuecat-sandbox-receipt.b64'),
        create_events: false,
        should_update_last_seen_fields: false,
      }),
    });
    expect(android.status).toBe(200);
    expect(Object.keys(((await android.json()) as { subscriber: { subscriptions: object } }).subscriber.subscriptions)).toEqual(['gold']);
    expect(sb.stats().appleReceipts).toEqual({ receipts: 0, signedTransactions: 1, unread: 2, purchases: 0 });
  });
});

describe('a purchase posted for a second App User ID', () => {
  // Another receipt of the same Apple ID: different bytes, the same original transaction id.
  const renewal = (): string =>
    signedTransaction({
      transactionId: '1000000700000001',
      originalTransactionId: SHARED_ORIGINAL,
      bundleId: 'com.revenuecat.sampleapp',
      productId: MONTHLY,
      purchaseDate: Date.UTC(2020, 7, 1),
      expiresDate: Date.UTC(2020, 8, 1),
      signedDate: Date.UTC(2020, 7, 1),
      environment: 'Sandbox',
    });

  it('moves to the new App User ID by default ("transfer to new App User ID"): the first one loses it', async () => {
    const sb = await start();
    expect((await post(sb, 'user_a', fixture('revenuecat-sandbox-receipt.b64'))).status).toBe(200);
    expect(Object.keys((await subscriber(sb, 'user_a')).subscriptions).sort()).toEqual([ANNUAL, MONTHLY]);
    // Re-posting for the same user moves nothing.
    expect((await post(sb, 'user_a', fixture('revenuecat-sandbox-receipt.b64'))).status).toBe(200);
    expect(sb.transfers()).toEqual([]);

    const moved = await post(sb, 'user_b', renewal());
    expect(moved.status).toBe(200);
    expect(Object.keys(moved.body.subscriber.subscriptions)).toEqual([MONTHLY]);
    expect(moved.body.subscriber.subscriptions[MONTHLY].store_transaction_id).toBe('1000000700000001');
    const a = await subscriber(sb, 'user_a');
    expect(a.subscriptions).toEqual({});
    expect(a.entitlements).toEqual({});

    const transfers = (await (await fetch(`${sb.url}/_sandbox/transfers`)).json()) as { count: number; transfers: unknown[] };
    expect(transfers).toEqual({
      count: 1,
      transfers: [{ originalTransactionId: SHARED_ORIGINAL, productIds: expect.arrayContaining([MONTHLY, ANNUAL]), from: 'user_a', to: 'user_b', atMs: expect.any(Number) }],
    });
    expect(sb.stats().transfers).toBe(1);

    // The same receipt bytes posted back for user_a move it back.
    expect((await post(sb, 'user_a', fixture('revenuecat-sandbox-receipt.b64'))).status).toBe(200);
    expect(Object.keys((await subscriber(sb, 'user_a')).subscriptions).sort()).toEqual([ANNUAL, MONTHLY]);
    expect((await subscriber(sb, 'user_b')).subscriptions).toEqual({});
    expect(sb.transfers().map((t) => [t.from, t.to])).toEqual([
      ['user_a', 'user_b'],
      ['user_b', 'user_a'],
    ]);
    expect(sb.stats().appleReceipts.purchases).toBe(1);
  });

  it('"keep with original App User ID" answers 7102 and moves nothing; "transfer if no active" moves an expired one', async () => {
    const sb = await start({ restoreBehavior: 'keep' });
    expect((await post(sb, 'user_a', fixture('revenuecat-sandbox-receipt.b64'))).status).toBe(200);
    const refused = await post(sb, 'user_b', renewal());
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe(7102);
    expect(Object.keys((await subscriber(sb, 'user_a')).subscriptions).sort()).toEqual([ANNUAL, MONTHLY]);
    expect(sb.peekSubscriber('user_b')).toBeUndefined();
    expect(sb.stats().transfers).toBe(0);

    // Every subscription of the sample expired in 2020: nothing active holds it back.
    sb.configure({ restoreBehavior: 'transfer_if_no_active' });
    expect((await post(sb, 'user_b', renewal())).status).toBe(200);
    expect((await subscriber(sb, 'user_a')).subscriptions).toEqual({});
    expect(sb.transfers()).toHaveLength(1);

    // With an active subscription the holder keeps it.
    const active = signedTransaction({
      transactionId: '1000000800000001',
      originalTransactionId: '1000000800000001',
      bundleId: 'com.revenuecat.sampleapp',
      productId: MONTHLY,
      purchaseDate: Date.now() - 86_400_000,
      expiresDate: Date.now() + 29 * 86_400_000,
      environment: 'Production',
    });
    expect((await post(sb, 'user_c', active)).status).toBe(200);
    const held = await post(sb, 'user_d', active);
    expect(held.status).toBe(400);
    expect(held.body.code).toBe(7102);
    expect(Object.keys((await subscriber(sb, 'user_c')).subscriptions)).toEqual([MONTHLY]);
    expect(sb.transfers()).toHaveLength(1);
  });

  it('reset forgets holders and transfers; a deleted holder no longer holds', async () => {
    const sb = await start();
    await post(sb, 'user_a', fixture('revenuecat-sandbox-receipt.b64'));
    expect(sb.deleteSubscriber('user_a')).toBe(true);
    expect((await post(sb, 'user_b', renewal())).status).toBe(200);
    expect(sb.transfers()).toEqual([]);
    await post(sb, 'user_c', renewal());
    expect(sb.transfers()).toHaveLength(1);
    sb.reset();
    expect(sb.transfers()).toEqual([]);
    expect(sb.stats()).toMatchObject({ transfers: 0, appleReceipts: { receipts: 0, signedTransactions: 0, unread: 0, purchases: 0 } });
  });
});
