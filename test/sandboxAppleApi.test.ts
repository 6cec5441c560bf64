// The sandbox's App Store Server API (issue 17): GET /inApps/v1/transactions/{id} answers a signed transaction
// for a JWT Apple would accept and a bare 401 for any it would not; 4040010 for an id it does not know, 4000006
// for a malformed one, Apple's 429 with Retry-After as a UNIX time in milliseconds, faults and a revoked key;
// three base paths for the two environments. JWTs are made with jose, an implementation independent of the
// sandbox's checks, and the answers are verified with the certificate in their own x5c header.
import { X509Certificate, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { SignJWT, compactVerify, decodeProtectedHeader, importPKCS8 } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sandboxCommand } from '../src/sandbox/command.js';
import { startSandbox, type AppleTransactionRecord, type Sandbox, type SandboxOptions } from '../src/sandbox/index.js';

const BUNDLE = 'com.example.app';
const DAY = 86_400_000;
const NOW = Date.now();

const KNOWN: AppleTransactionRecord = {
  transactionId: '2000000111111111',
  originalTransactionId: '2000000111111110',
  productId: 'pro.monthly',
  bundleId: BUNDLE,
  environment: 'Production',
  purchaseDate: NOW - DAY,
  expiresDate: NOW + 29 * DAY,
};
const SANDBOX_ONLY: AppleTransactionRecord = { ...KNOWN, transactionId: '2000000222222222', originalTransactionId: '2000000222222222', environment: 'Sandbox' };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rcm-sbx-apple-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

async function start(options: SandboxOptions = {}): Promise<Sandbox> {
  sandbox = await startSandbox({ appleBundleIds: [BUNDLE], appleTransactions: [KNOWN, SANDBOX_ONLY], ...options });
  return sandbox;
}

interface Claims {
  kid?: string;
  typ?: string | undefined;
  iss?: string;
  aud?: string;
  bid?: string | undefined;
  iat?: number;
  exp?: number;
  key?: KeyObject | Awaited<ReturnType<typeof importPKCS8>>;
}

/** A JWT as the App Store Server API wants it, with any claim overridden. */
async function jwt(sb: Sandbox, claims: Claims = {}): Promise<string> {
  const c = sb.appleCredentials();
  const iat = claims.iat ?? Math.floor(Date.now() / 1000);
  const key = claims.key ?? (await importPKCS8(c.privateKeyPem, 'ES256'));
  const header: { alg: string; kid: string; typ?: string } = { alg: 'ES256', kid: claims.kid ?? c.keyId };
  if (!('typ' in claims)) header.typ = 'JWT';
  else if (claims.typ !== undefined) header.typ = claims.typ;
  const payload: Record<string, unknown> = { iss: claims.iss ?? c.issuerId, iat, exp: claims.exp ?? iat + 1200, aud: claims.aud ?? 'appstoreconnect-v1' };
  if (!('bid' in claims)) payload.bid = BUNDLE;
  else if (claims.bid !== undefined) payload.bid = claims.bid;
  return new SignJWT(payload).setProtectedHeader(header).sign(key);
}

interface Lookup {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

async function lookup(sb: Sandbox, id: string, token: string, base = ''): Promise<Lookup> {
  const res = await fetch(`${sb.url}${base}/inApps/v1/transactions/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Apple's 401 is not JSON.
  }
  return { status: res.status, headers: res.headers, body };
}

/** Verifies a signed transaction against the certificate in its own x5c header and returns its payload. */
async function verified(jws: string): Promise<Record<string, unknown>> {
  const header = decodeProtectedHeader(jws);
  expect(header.alg).toBe('ES256');
  expect(header.x5c).toHaveLength(1);
  const certificate = new X509Certificate(Buffer.from(header.x5c![0]!, 'base64'));
  expect(certificate.verify(certificate.publicKey)).toBe(true);
  const { payload } = await compactVerify(jws, certificate.publicKey);
  return JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
}

describe('App Store Server API: answers', () => {
  it('a valid JWT gets the signed transaction, signed by the certificate the sandbox shows', async () => {
    const sb = await start();
    const reply = await lookup(sb, KNOWN.transactionId, await jwt(sb));
    expect(reply.status).toBe(200);
    expect(Object.keys(reply.body)).toEqual(['signedTransactionInfo']);
    const payload = await verified(reply.body.signedTransactionInfo as string);
    expect(payload).toMatchObject({
      transactionId: KNOWN.transactionId,
      originalTransactionId: KNOWN.originalTransactionId,
      productId: KNOWN.productId,
      bundleId: BUNDLE,
      purchaseDate: KNOWN.purchaseDate,
      expiresDate: KNOWN.expiresDate,
      environment: 'Production',
      type: 'Auto-Renewable Subscription',
      inAppOwnershipType: 'PURCHASED',
    });
    expect(typeof payload.signedDate).toBe('number');
    const state = (await (await fetch(`${sb.url}/_sandbox/apple`)).json()) as { signingCertificate: string; keyId: string; transactions: number };
    const header = decodeProtectedHeader(reply.body.signedTransactionInfo as string);
    expect(new X509Certificate(state.signingCertificate).raw.toString('base64')).toBe(header.x5c![0]);
    expect(state).toMatchObject({ keyId: sb.appleCredentials().keyId, transactions: 2 });
    expect(JSON.stringify(state)).not.toContain('PRIVATE KEY');
    expect(sb.stats().appStoreServerApi).toMatchObject({ requests: 1, found: 1, tokens: 1, byBundle: { [BUNDLE]: 1 }, byStatus: { '200': 1 } });
    // Not RevenueCat traffic.
    expect(sb.stats().requests).toBe(0);
  });

  it('the signed transaction it answers imports through POST /v1/receipts', async () => {
    const sb = await start();
    const { body } = await lookup(sb, KNOWN.transactionId, await jwt(sb));
    const res = await fetch(`${sb.url}/v1/receipts`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer appl_sandbox_key', 'X-Platform': 'ios' },
      body: JSON.stringify({ app_user_id: 'looked_up', fetch_token: body.signedTransactionInfo, create_events: false, should_update_last_seen_fields: false }),
    });
    expect(res.status).toBe(200);
    const subscriber = ((await res.json()) as { subscriber: { subscriptions: Record<string, { store_transaction_id: string; is_sandbox: boolean }> } }).subscriber;
    expect(subscriber.subscriptions[KNOWN.productId]).toMatchObject({ store_transaction_id: KNOWN.transactionId, is_sandbox: false });
  });

  it('environments: the root path finds either, /production only production, /sandbox only Sandbox', async () => {
    const sb = await start();
    const token = await jwt(sb);
    const root = await lookup(sb, SANDBOX_ONLY.transactionId, token);
    expect(root.status).toBe(200);
    expect(await verified(root.body.signedTransactionInfo as string)).toMatchObject({ environment: 'Sandbox', transactionId: SANDBOX_ONLY.transactionId });
    const production = await lookup(sb, SANDBOX_ONLY.transactionId, token, '/production');
    expect(production.status).toBe(404);
    expect(production.body).toEqual({ errorCode: 4040010, errorMessage: 'Transaction id not found.' });
    const sandboxEnv = await lookup(sb, SANDBOX_ONLY.transactionId, token, '/sandbox');
    expect(sandboxEnv.status).toBe(200);
    expect((await lookup(sb, KNOWN.transactionId, token, '/sandbox')).body.errorCode).toBe(4040010);
    expect((await lookup(sb, KNOWN.transactionId, token, '/production')).status).toBe(200);
    expect(sb.stats().appStoreServerApi.byBasePath).toEqual({ '/': 1, '/production': 2, '/sandbox': 2 });
  });

  it('4040010 for an unknown id or another app’s, 4000006 for a malformed one', async () => {
    const other = 'com.example.other';
    const sb = await start({ appleBundleIds: [BUNDLE, other] });
    const token = await jwt(sb);
    expect(await lookup(sb, '2000000999999999', token)).toMatchObject({ status: 404, body: { errorCode: 4040010, errorMessage: 'Transaction id not found.' } });
    // The transaction exists, but not for the app the JWT names.
    expect((await lookup(sb, KNOWN.transactionId, await jwt(sb, { bid: other }))).body.errorCode).toBe(4040010);
    expect(await lookup(sb, 'abc123', token)).toMatchObject({ status: 400, body: { errorCode: 4000006, errorMessage: 'Invalid transaction id.' } });
    expect(sb.stats().appStoreServerApi.byErrorCode).toEqual({ '4040010': 2, '4000006': 1 });
  });

  it('seeded transactions: deterministic ids, renewals sharing the original, every n-th in Sandbox', async () => {
    const sb = await start({
      appleTransactions: [],
      appleSeedPurchases: 3,
      appleSeedProducts: ['pro.monthly', 'lifetime:nonconsumable'],
      appleSeedRenewals: 1,
      appleSeedSandboxEvery: 3,
      seed: 7,
    });
    // 2 SSS BBB PPPPPPP RR: seed 7, bundle 0, purchase p, renewal r.
    const id = (p: number, r: number): string => `2007000${String(p).padStart(7, '0')}${String(r).padStart(2, '0')}`;
    expect(sb.appleTransactions().map((t) => t.transactionId)).toEqual([id(0, 0), id(0, 1), id(1, 0), id(2, 0), id(2, 1)]);
    const token = await jwt(sb);
    const renewal = await verified((await lookup(sb, id(0, 1), token)).body.signedTransactionInfo as string);
    expect(renewal).toMatchObject({ originalTransactionId: id(0, 0), productId: 'pro.monthly', environment: 'Production', transactionReason: 'RENEWAL' });
    expect(renewal.expiresDate as number).toBeGreaterThan(Date.now());
    const lifetime = await verified((await lookup(sb, id(1, 0), token)).body.signedTransactionInfo as string);
    expect(lifetime).toMatchObject({ productId: 'lifetime', type: 'Non-Consumable' });
    expect(lifetime.expiresDate).toBeUndefined();
    expect((await lookup(sb, id(2, 1), token, '/production')).status).toBe(404);
    expect(await verified((await lookup(sb, id(2, 1), token, '/sandbox')).body.signedTransactionInfo as string)).toMatchObject({ environment: 'Sandbox' });
  });
});

describe('App Store Server API: the JWT', () => {
  it('401 for a wrong kid, iss, aud, bid, typ, an expired or too long-lived token, or a bad signature', async () => {
    const sb = await start();
    const now = Math.floor(Date.now() / 1000);
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const cases: [string, Claims][] = [
      ['kid', { kid: 'WRONGKEY01' }],
      ['iss', { iss: '00000000-0000-0000-0000-000000000000' }],
      ['aud', { aud: 'appstoreconnect-v2' }],
      ['bid', { bid: 'com.example.unknown' }],
      ['bid', { bid: undefined }],
      ['typ', { typ: undefined }],
      ['expired', { iat: now - 1800, exp: now - 10 }],
      ['lifetime', { iat: now, exp: now + 3601 }],
      ['signature', { key: otherKey }],
    ];
    for (const [reason, claims] of cases) {
      const reply = await lookup(sb, KNOWN.transactionId, await jwt(sb, claims));
      expect({ reason, status: reply.status, header: reply.headers.get('x-sandbox-reason') }).toEqual({ reason, status: 401, header: reason });
    }
    const missing = await fetch(`${sb.url}/inApps/v1/transactions/${KNOWN.transactionId}`);
    expect(missing.status).toBe(401);
    // Exactly 60 minutes is allowed.
    expect((await lookup(sb, KNOWN.transactionId, await jwt(sb, { iat: now, exp: now + 3600 }))).status).toBe(200);
    expect(sb.stats().appStoreServerApi).toMatchObject({ unauthorized: cases.length + 1, found: 1 });
  });

  it('checks against a given .p8; a generated key is written out as one (0600)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = join(dir, 'AuthKey_GIVEN00001.p8');
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const given = await start({ appleKeyFile: keyFile, appleKeyId: 'GIVEN00001' });
    expect(given.appleCredentials()).toMatchObject({ keyId: 'GIVEN00001', keyFile });
    expect((await lookup(given, KNOWN.transactionId, await jwt(given, { key: privateKey }))).status).toBe(200);
    await given.close();

    const keyOut = join(dir, 'out', 'AuthKey_SBXKEY0001.p8');
    const generated = await start({ appleKeyOut: keyOut });
    const pem = await readFile(keyOut, 'utf8');
    expect(pem).toBe(generated.appleCredentials().privateKeyPem);
    expect((await stat(keyOut)).mode & 0o777).toBe(0o600);
    expect(createPublicKey(pem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(() => generated.configure({ appleKeyFile: keyFile })).toThrow(/cannot be changed/);
    await expect(startSandbox({ appleKeyFile: join(dir, 'missing.p8') })).rejects.toThrow(/missing\.p8: ENOENT/);
  });

  it('a revoked key answers 401 until restored (admin routes)', async () => {
    const sb = await start();
    const token = await jwt(sb);
    const revoke = await fetch(`${sb.url}/_sandbox/apple/key/revoke`, { method: 'POST' });
    expect(((await revoke.json()) as { revoked: boolean }).revoked).toBe(true);
    const refused = await lookup(sb, KNOWN.transactionId, token);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-sandbox-reason')).toBe('revoked');
    await fetch(`${sb.url}/_sandbox/apple/key/restore`, { method: 'POST' });
    expect((await lookup(sb, KNOWN.transactionId, token)).status).toBe(200);
  });
});

describe('App Store Server API: rate limit and faults', () => {
  it('over the per-app rate: 429 / 4290000 with Retry-After a UNIX time in milliseconds, honoured', async () => {
    const sb = await start();
    const set = await fetch(`${sb.url}/_sandbox/apple/rate`, { method: 'POST', body: JSON.stringify({ perSecond: 2 }) });
    expect(((await set.json()) as { ratePerSecond: number }).ratePerSecond).toBe(2);
    const token = await jwt(sb);
    // Ten at once against 2 per second: only a machine stalled for seconds would let them all through.
    const before = Date.now();
    const replies = await Promise.all(Array.from({ length: 10 }, () => lookup(sb, KNOWN.transactionId, token)));
    const limited = replies.filter((r) => r.status === 429);
    expect(replies.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(2);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited.length + replies.filter((r) => r.status === 200).length).toBe(10);
    let latest = 0;
    for (const reply of limited) {
      expect(reply.body).toEqual({ errorCode: 4290000, errorMessage: 'Rate limit exceeded.' });
      const retryAt = Number(reply.headers.get('retry-after'));
      expect(Number.isInteger(retryAt)).toBe(true);
      // Milliseconds since the epoch, within the one-second window: not a number of seconds.
      expect(retryAt).toBeGreaterThan(before);
      expect(retryAt).toBeLessThanOrEqual(Date.now() + 1000);
      latest = Math.max(latest, retryAt);
    }
    // Another app has its own budget.
    sb.configure({ appleBundleIds: [BUNDLE, 'com.example.other'] });
    expect((await lookup(sb, KNOWN.transactionId, await jwt(sb, { bid: 'com.example.other' }))).body.errorCode).toBe(4040010);
    // Asking again at the time it names is admitted.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, latest - Date.now()) + 5));
    expect((await lookup(sb, KNOWN.transactionId, token)).status).toBe(200);
    expect(sb.stats().appStoreServerApi.rateLimited).toBe(limited.length);
  });

  it('the fault knob answers the retryable errors it is given', async () => {
    const sb = await start({ appleFaultRate: 1, appleFaultCodes: [4040006] });
    const token = await jwt(sb);
    expect(await lookup(sb, KNOWN.transactionId, token)).toMatchObject({ status: 404, body: { errorCode: 4040006 } });
    sb.configure({ appleFaultCodes: [5000001] });
    expect(await lookup(sb, KNOWN.transactionId, token)).toMatchObject({ status: 500, body: { errorCode: 5000001 } });
    sb.configure({ appleFaultRate: 0 });
    expect((await lookup(sb, KNOWN.transactionId, token)).status).toBe(200);
    expect(sb.stats().appStoreServerApi).toMatchObject({ faults: 2, maxLookupsPerTransaction: 3 });
  });
});

describe('rc-migrate sandbox --apple-…', () => {
  it('takes a transactions file and prints the key id, issuer id and .p8 path', async () => {
    const file = join(dir, 'transactions.json');
    await writeFile(file, JSON.stringify({ transactions: [{ ...KNOWN, purchaseDate: new Date(KNOWN.purchaseDate).toISOString() }] }));
    const keyOut = join(dir, 'cli', 'AuthKey_CLIKEY0001.p8');
    let printed = '';
    const program = new Command('rc-migrate').exitOverride();
    program.addCommand(
      sandboxCommand({
        out: (text) => {
          printed += text;
        },
        untilStopped: async (sb) => {
          expect(sb.appleTransactions()).toEqual([{ ...KNOWN, type: 'Auto-Renewable Subscription' }]);
          expect(sb.options()).toMatchObject({ appleRatePerSecond: 5, restoreBehavior: 'keep', appleKeyId: 'CLIKEY0001' });
          expect((await lookup(sb, KNOWN.transactionId, await jwt(sb))).status).toBe(200);
        },
      }),
    );
    const args = [
      '--apple-transactions',
      file,
      '--apple-bundle-id',
      BUNDLE,
      '--apple-key-id',
      'CLIKEY0001',
      '--apple-key-out',
      keyOut,
      '--apple-rate',
      '5',
      '--restore-behavior',
      'keep',
    ];
    await program.parseAsync(['sandbox', '--port', '0', ...args], { from: 'user' });
    expect(printed).toMatch(
      /^RevenueCat sandbox listening on (http:\/\/127\.0\.0\.1:\d+) .*\nApp Store Server API on \1 .*APP_STORE_SERVER_API_URL=\1 APPLE_KEY_ID=CLIKEY0001 APPLE_ISSUER_ID=\S+ APPLE_PRIVATE_KEY_FILE=\S+AuthKey_CLIKEY0001\.p8 bundle ids com\.example\.app\n$/,
    );
    expect(printed).not.toContain('PRIVATE KEY');
    expect(await readFile(keyOut, 'utf8')).toContain('BEGIN PRIVATE KEY');
  });
});
