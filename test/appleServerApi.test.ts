// The App Store Server API lookups' parts that need no network (issue 17): the JWT (claims and header checked with
// jose against the public half of a key generated here), its renewal before it lapses, Apple's Retry-After in
// milliseconds, the classification of Apple's answers, the credentials' variables, and how a transaction_id
// column is read at ingest.
import { decodeProtectedHeader, exportPKCS8, generateKeyPair, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { appleCredentialsOf, missingCredentialsMessage } from '../src/appstore/serverApiCredentials.js';
import { classifyLookup } from '../src/appstore/serverApiErrors.js';
import type { LookupResult } from '../src/appstore/serverApiClient.js';
import { AppleKeyError, ServerApiTokens } from '../src/appstore/serverApiJwt.js';
import { MAX_APPLE_WAIT_MS, parseAppleRetryAfter } from '../src/appstore/serverApiRetryAfter.js';
import { lookupOf, postedBody } from '../src/appstore/lookup/transactionLookup.js';
import { loadConfig } from '../src/config.js';
import { planColumns, type ColumnPlan } from '../src/ingest/columns.js';
import { validateRow } from '../src/ingest/validateRow.js';

async function keyPair(): Promise<{ pem: string; publicKey: Awaited<ReturnType<typeof generateKeyPair>>['publicKey'] }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { pem: await exportPKCS8(privateKey), publicKey };
}

const CREDS = { issuerId: '57246542-96fe-1a63-e053-0824d011072a', keyId: 'ABC123DEFG' };

describe('App Store Server API JWT', () => {
  it('is ES256 with kid and typ JWT, and carries iss, iat, exp (≤ 60 min), aud appstoreconnect-v1 and bid', async () => {
    const { pem, publicKey } = await keyPair();
    const now = Date.parse('2026-12-07T07:00:00Z');
    const tokens = new ServerApiTokens({ ...CREDS, privateKey: pem }, { now: () => now });
    const jwt = await tokens.tokenFor('com.example.app');
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'ES256', kid: CREDS.keyId, typ: 'JWT' });
    const { payload } = await jwtVerify(jwt, publicKey, { audience: 'appstoreconnect-v1', issuer: CREDS.issuerId, currentDate: new Date(now), algorithms: ['ES256'] });
    expect(payload.bid).toBe('com.example.app');
    expect(payload.iat).toBe(now / 1000);
    expect((payload.exp as number) - (payload.iat as number)).toBeGreaterThan(0);
    expect((payload.exp as number) - (payload.iat as number)).toBeLessThanOrEqual(3600);
  });

  it('never asks for more than 60 minutes, even when told to', async () => {
    const { pem, publicKey } = await keyPair();
    const tokens = new ServerApiTokens({ ...CREDS, privateKey: pem }, { lifetimeS: 7200 });
    const { payload } = await jwtVerify(await tokens.tokenFor('com.example.app'), publicKey);
    expect((payload.exp as number) - (payload.iat as number)).toBe(3600);
  });

  it('reuses a token, and signs a new one a few minutes before the old one lapses', async () => {
    const { pem, publicKey } = await keyPair();
    let now = Date.parse('2026-12-07T07:00:00Z');
    const tokens = new ServerApiTokens({ ...CREDS, privateKey: pem }, { lifetimeS: 1200, renewBeforeS: 300, now: () => now });
    const first = await tokens.tokenFor('com.example.app');
    now += 14 * 60_000; // 6 minutes left
    expect(await tokens.tokenFor('com.example.app')).toBe(first);
    now += 90_000; // 4.5 minutes left: within the renewal margin
    const second = await tokens.tokenFor('com.example.app');
    expect(second).not.toBe(first);
    const { payload } = await jwtVerify(second, publicKey, { currentDate: new Date(now) });
    expect(payload.iat).toBe(Math.floor(now / 1000));
    // Each app has its own token (bid).
    const other = await tokens.tokenFor('com.example.other');
    expect((await jwtVerify(other, publicKey, { currentDate: new Date(now) })).payload.bid).toBe('com.example.other');
  });

  it('says a key is not a .p8 without quoting it', async () => {
    const secret = '-----BEGIN PRIVATE KEY-----\nTm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----';
    const tokens = new ServerApiTokens({ ...CREDS, privateKey: secret });
    const err = await tokens.check().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppleKeyError);
    expect((err as Error).message).toContain('ABC123DEFG');
    expect((err as Error).message).not.toContain('Tm90IGEga2V5');
  });

  it('accepts a PEM pasted into one variable with \\n for its line breaks', async () => {
    const { pem, publicKey } = await keyPair();
    const tokens = new ServerApiTokens({ ...CREDS, privateKey: pem.trim().replace(/\n/g, '\\n') });
    await expect(jwtVerify(await tokens.tokenFor('com.example.app'), publicKey)).resolves.toBeTruthy();
  });
});

describe("Apple's Retry-After", () => {
  const now = 1_765_090_800_000;
  it('is a UNIX time in milliseconds: the moment to wait until', () => {
    expect(parseAppleRetryAfter(String(now + 1500), now)).toBe(now + 1500);
  });
  it('never asks to wait in the past, nor longer than an hour', () => {
    expect(parseAppleRetryAfter(String(now - 5000), now)).toBe(now);
    expect(parseAppleRetryAfter(String(now + 10 * MAX_APPLE_WAIT_MS), now)).toBe(now + MAX_APPLE_WAIT_MS);
  });
  it('reads UNIX seconds, delta-seconds and HTTP dates too, and nothing else', () => {
    expect(parseAppleRetryAfter(String(now / 1000 + 2), now)).toBe(now + 2000);
    expect(parseAppleRetryAfter('3', now)).toBe(now + 3000);
    expect(parseAppleRetryAfter(new Date(now + 4000).toUTCString(), now)).toBe(now + 4000);
    expect(parseAppleRetryAfter(undefined, now)).toBeUndefined();
    expect(parseAppleRetryAfter('', now)).toBeUndefined();
    expect(parseAppleRetryAfter('-5', now)).toBeUndefined();
    expect(parseAppleRetryAfter('soon', now)).toBeUndefined();
  });
});

describe("classification of Apple's answers", () => {
  const answer = (status: number, errorCode?: number, extra: Partial<LookupResult> = {}): LookupResult =>
    ({ kind: 'response', status, ...(errorCode !== undefined ? { errorCode } : {}), environment: 'production', durationMs: 5, ...extra }) as LookupResult;

  it('a signed transaction is found', () => {
    expect(classifyLookup({ kind: 'found', signedTransaction: 'a.b.c', environment: 'sandbox', durationMs: 3 })).toEqual({ kind: 'found', signedTransaction: 'a.b.c' });
  });
  it('4040010 fails the row as apple_transaction_not_found; 4000006 as apple_invalid_transaction_id', () => {
    expect(classifyLookup(answer(404, 4040010))).toMatchObject({ kind: 'permanent', reason: 'apple_transaction_not_found', code: 4040010 });
    expect(classifyLookup(answer(400, 4000006))).toMatchObject({ kind: 'permanent', reason: 'apple_invalid_transaction_id', code: 4000006 });
  });
  it('5000001, 4040002, 4040004, 4040006, other 5xx and network errors are retried', () => {
    for (const [status, code] of [
      [500, 5000001],
      [404, 4040002],
      [404, 4040004],
      [404, 4040006],
    ] as const) {
      expect(classifyLookup(answer(status, code))).toMatchObject({ kind: 'transient', reason: `apple_${code}` });
    }
    expect(classifyLookup(answer(503))).toMatchObject({ kind: 'transient', reason: 'apple_http_503' });
    expect(classifyLookup({ kind: 'network', error: 'reset', message: 'socket hang up', environment: 'production', durationMs: 1 })).toMatchObject({
      kind: 'transient',
      reason: 'apple_reset',
    });
  });
  it('429 (4290000) waits until its Retry-After; 401 stops the lookups; other answers fail the row', () => {
    expect(classifyLookup(answer(429, 4290000, { retryAt: 123 }))).toMatchObject({ kind: 'rate_limited', retryAt: 123 });
    expect(classifyLookup(answer(401))).toMatchObject({ kind: 'unauthorized', status: 401 });
    expect(classifyLookup(answer(400, 4000001))).toMatchObject({ kind: 'permanent', reason: 'apple_4000001' });
    expect(classifyLookup(answer(403))).toMatchObject({ kind: 'permanent', reason: 'apple_http_403' });
  });
});

describe('credentials', () => {
  it('come from APPLE_ISSUER_ID, APPLE_KEY_ID and APPLE_PRIVATE_KEY, and name what is missing', () => {
    const none = appleCredentialsOf(loadConfig({ env: {} }));
    expect(none).toEqual({ ok: false, missing: ['APPLE_ISSUER_ID', 'APPLE_KEY_ID', 'APPLE_PRIVATE_KEY (or APPLE_PRIVATE_KEY_FILE)'] });
    if (!none.ok) expect(missingCredentialsMessage(none.missing)).toContain('APPLE_KEY_ID');
    const config = loadConfig({ env: { APPLE_ISSUER_ID: CREDS.issuerId, APPLE_KEY_ID: CREDS.keyId, APPLE_PRIVATE_KEY: 'pem' } });
    expect(appleCredentialsOf(config)).toEqual({ ok: true, credentials: { ...CREDS, privateKey: 'pem' } });
  });
  it('bundle ids from --bundle-id (repeatable) or a comma-separated value; appleRate defaults to 50/s', () => {
    expect(loadConfig({ env: {}, overrides: { appleBundleIds: ['com.a', 'com.b'] } }).appleBundleIds).toEqual(['com.a', 'com.b']);
    expect(loadConfig({ env: {}, overrides: { appleBundleIds: 'com.a, com.b' } }).appleBundleIds).toEqual(['com.a', 'com.b']);
    expect(loadConfig({ env: {} }).appleRate).toBe(50);
    expect(loadConfig({ env: { RC_MIGRATE_APPLE_RATE: '5/s', APP_STORE_SERVER_API_URL: 'http://127.0.0.1:9/x' } })).toMatchObject({
      appleRate: 5,
      appStoreApiUrl: 'http://127.0.0.1:9/x',
    });
  });
});

describe('transaction_id rows at ingest', () => {
  const plan = (columns: string[], map?: Record<string, string>): ColumnPlan => {
    const planned = planColumns(columns, { ...(map ? { map } : {}) });
    if ('error' in planned) throw new Error(planned.error);
    return planned.plan;
  };

  it('a file may give transaction_id instead of a token column, and bundle_id', () => {
    const p = plan(['platform', 'app_user_id', 'transaction_id', 'bundle_id']);
    expect(p).toMatchObject({ transactionId: 'transaction_id', bundleId: 'bundle_id' });
    const row = validateRow({ platform: 'ios', app_user_id: 'u1', transaction_id: ' 2000000123456789 ', bundle_id: 'com.example.app' }, p, {});
    expect(row).toMatchObject({ ok: true, body: { fetch_token: '2000000123456789' }, lookup: { transaction_id: '2000000123456789', bundle_id: 'com.example.app' } });
  });

  it('--map names another column transaction_id', () => {
    const p = plan(['platform', 'app_user_id', 'apple_txn'], { apple_txn: 'transaction_id' });
    expect(validateRow({ platform: 'macos', app_user_id: 'u1', apple_txn: '42' }, p, {})).toMatchObject({ ok: true, lookup: { transaction_id: '42' } });
  });

  it('rejects a transaction id that is not decimal digits, with its reason', () => {
    const p = plan(['platform', 'app_user_id', 'transaction_id']);
    const row = validateRow({ platform: 'ios', app_user_id: 'u1', transaction_id: '2000-0001' }, p, {});
    expect(row).toEqual({ ok: false, reason: 'transaction_id "2000-0001" is not an Apple transaction id: it must be decimal digits only, such as 2000000123456789' });
  });

  it('a row with both a token and a transaction id sends the token', () => {
    const p = plan(['platform', 'app_user_id', 'receipt', 'transaction_id']);
    const row = validateRow({ platform: 'ios', app_user_id: 'u1', receipt: 'MIIT...', transaction_id: '123' }, p, {});
    expect(row).toMatchObject({ ok: true, body: { fetch_token: 'MIIT...' } });
    expect(row.ok && row.lookup).toBeFalsy();
  });

  it('a Google row cannot be looked up: it still needs its token', () => {
    const p = plan(['platform', 'app_user_id', 'transaction_id', 'product_id']);
    const row = validateRow({ platform: 'android', app_user_id: 'u1', transaction_id: '123', product_id: 'gold' }, p, {});
    expect(row).toMatchObject({ ok: false, reason: expect.stringContaining('fetch_token') as unknown });
  });

  it('a job given by its transaction id posts the signed transaction; a retried one (digits only) is looked up again', () => {
    const body = { app_user_id: 'u1', fetch_token: '123' };
    expect(lookupOf({ platform: 'ios', body })).toEqual({ transaction_id: '123' });
    expect(lookupOf({ platform: 'android', body })).toBeUndefined();
    expect(lookupOf({ platform: 'ios', body: { fetch_token: 'MIIT+abc=' } })).toBeUndefined();
    expect(postedBody({ body, lookup: { transaction_id: '123', signed: 'h.p.s' } })).toEqual({ app_user_id: 'u1', fetch_token: 'h.p.s' });
    expect(postedBody({ body })).toBe(body);
  });
});
