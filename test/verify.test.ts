// The verify pass: compareState's rules one by one, then the whole thing for real — a run migrated through
// the pipeline into the sandbox, the sandbox's state changed behind its back, and verifyRun reading it back
// over v2 (no side effects) and v1 (get-or-create: it creates what it reads).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runMigration } from '../src/commands/run.js';
import { verifyMigration } from '../src/commands/verify.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { silentLogger } from '../src/logger.js';
import { CustomerReader, TokenBucket, type CustomerReaderOptions } from '../src/revenuecat/customerReader.js';
import type { CustomerState } from '../src/revenuecat/customerState.js';
import { compareReceiptExpiries, compareState, type ImportedRow } from '../src/state/compareState.js';
import type { StateMismatch } from '../src/state/mismatch.js';
import { rowExpectations, verifyRun } from '../src/verify/verifyRun.js';
import { ROUTE_V2_CUSTOMER, ROUTE_V2_PURCHASES, ROUTE_V2_SUBSCRIPTIONS, ROUTE_SUBSCRIBER, startSandbox, type Sandbox } from '../src/sandbox/index.js';
import type { Outcome } from '../src/types.js';
import { appleSigner } from './support/appleReceipts.js';
import { pipelineFixture } from './support/fixture.js';
import { readCsvFile, SANDBOX_KEY, testConfig, token, writeCsv } from './support/harness.js';
import { redisUrl } from './support/redis.js';

const SECRET = 'sk_sandbox_secret';
const DAY = 86_400_000;
const NOW = Date.UTC(2025, 5, 15, 12);
const iso = (ms: number) => new Date(ms).toISOString();

// ---------------------------------------------------------------------------------------------------------
// compareState: one rule at a time
// ---------------------------------------------------------------------------------------------------------

function row(overrides: Partial<ImportedRow> = {}): ImportedRow {
  return {
    src: 'a.csv',
    line: 2,
    app_user_id: 'u1',
    product_id: 'pro.monthly',
    subscriber: {
      original_app_user_id: 'u1',
      active_entitlements: [{ id: 'premium', expires_date: iso(NOW + 30 * DAY), product_identifier: 'pro.monthly' }],
      product_found: 'subscription',
    },
    ...overrides,
  };
}

function state(overrides: Partial<CustomerState> = {}): CustomerState {
  return {
    exists: true,
    original_app_user_id: 'u1',
    active_entitlements: [{ id: 'premium', expires_at: iso(NOW + 30 * DAY) }],
    products: [{ id: 'pro.monthly', environment: 'production', active: true, expires_at: iso(NOW + 30 * DAY) }],
    ...overrides,
  };
}

const opts = (extra: Record<string, unknown> = {}) => ({ toleranceMs: DAY, now: NOW, ...extra });
const kinds = (ms: StateMismatch[]) => ms.map((m) => m.kind);

describe('compareState', () => {
  it('matches an unchanged user, and a later expiry (a renewal) is fine', () => {
    expect(compareState(row(), state(), opts())).toEqual([]);
    const renewed = state({ active_entitlements: [{ id: 'premium', expires_at: iso(NOW + 60 * DAY) }] });
    expect(compareState(row(), renewed, opts())).toEqual([]);
    // Google keys may be productId:basePlanId.
    expect(compareState(row(), state({ products: [{ id: 'pro.monthly:p1m', active: true, expires_at: null }] }), opts())).toEqual([]);
  });

  it('user_missing, and nothing else, when the customer is gone', () => {
    const found = compareState(row(), { exists: false, active_entitlements: [], products: [] }, opts());
    expect(found).toEqual([
      { src: 'a.csv', line: 2, app_user_id: 'u1', product_id: 'pro.monthly', kind: 'user_missing', expected: 'customer u1 exists', actual: 'no such customer' },
    ]);
    const createdByV1 = compareState(row(), { exists: false, created_by_read: true, active_entitlements: [], products: [] }, opts());
    expect(createdByV1[0]?.actual).toMatch(/v1 read has now created/);
  });

  it('product_missing when the row product is gone (the entitlement held by another product is fine)', () => {
    const s = state({ products: [{ id: 'other', active: true, expires_at: iso(NOW + 30 * DAY) }] });
    const found = compareState(
      row({ subscriber: { ...row().subscriber!, active_entitlements: [{ id: 'premium', expires_date: iso(NOW + 30 * DAY), product_identifier: 'other' }] } }),
      s,
      opts(),
    );
    expect(kinds(found)).toEqual(['product_missing']);
    expect(found[0]).toMatchObject({ expected: 'product pro.monthly', actual: "not among the customer's products (other)" });
  });

  it('entitlement_inactive when the granting product is there but lapsed', () => {
    const s = state({ active_entitlements: [], products: [{ id: 'pro.monthly', active: false, expires_at: iso(NOW - DAY) }] });
    const found = compareState(row(), s, opts());
    expect(kinds(found)).toEqual(['entitlement_inactive']);
    expect(found[0]?.actual).toContain(`pro.monthly expires ${iso(NOW - DAY)}`);
  });

  it('entitlement_missing when nothing grants it any more (product gone, or still active but not granting)', () => {
    expect(kinds(compareState(row(), state({ active_entitlements: [], products: [] }), opts()))).toEqual(['product_missing', 'entitlement_missing']);
    expect(kinds(compareState(row(), state({ active_entitlements: [] }), opts()))).toEqual(['entitlement_missing']);
  });

  it('an entitlement whose import-time expiry has passed lapsed on schedule: no mismatch', () => {
    const old = row({ subscriber: { ...row().subscriber!, active_entitlements: [{ id: 'premium', expires_date: iso(NOW - DAY), product_identifier: 'pro.monthly' }] } });
    expect(compareState(old, state({ active_entitlements: [], products: [{ id: 'pro.monthly', active: false, expires_at: iso(NOW - DAY) }] }), opts())).toEqual([]);
  });

  it('expiry_differs only when earlier by more than the tolerance; lifetime → expiring counts', () => {
    const slightly = state({ active_entitlements: [{ id: 'premium', expires_at: iso(NOW + 30 * DAY - DAY / 2) }] });
    expect(compareState(row(), slightly, opts())).toEqual([]);
    const earlier = state({ active_entitlements: [{ id: 'premium', expires_at: iso(NOW + 5 * DAY) }] });
    const found = compareState(row(), earlier, opts());
    expect(kinds(found)).toEqual(['expiry_differs']);
    expect(found[0]).toMatchObject({ expected: `premium expires ${iso(NOW + 30 * DAY)} (import answer)`, actual: `premium expires ${iso(NOW + 5 * DAY)}` });
    expect(kinds(compareState(row(), earlier, opts({ toleranceMs: 30 * DAY })))).toEqual([]);
    const lifetime = row({ subscriber: { ...row().subscriber!, active_entitlements: [{ id: 'premium', expires_date: null, product_identifier: 'pro.monthly' }] } });
    expect(kinds(compareState(lifetime, state(), opts()))).toEqual(['expiry_differs']);
    expect(compareState(row(), state({ active_entitlements: [{ id: 'premium', expires_at: null }] }), opts())).toEqual([]);
  });

  it('transferred when the original app user id changed', () => {
    const found = compareState(row(), state({ original_app_user_id: 'someone_else' }), opts());
    expect(found).toEqual([expect.objectContaining({ kind: 'transferred', expected: 'original_app_user_id u1', actual: 'original_app_user_id someone_else' })]);
  });

  it('environment_differs against an expected environment, or the one the import answer recorded', () => {
    const sandboxed = state({ products: [{ id: 'pro.monthly', environment: 'sandbox', active: true, expires_at: iso(NOW + 30 * DAY) }] });
    expect(compareState(row(), sandboxed, opts())).toEqual([]);
    const found = compareState(row(), sandboxed, opts({ environment: 'production' }));
    expect(found).toEqual([expect.objectContaining({ kind: 'environment_differs', expected: 'pro.monthly in production', actual: 'pro.monthly in sandbox' })]);
    const withImportEnv = row({ subscriber: { ...row().subscriber!, product: { expires_date: iso(NOW + 30 * DAY), is_sandbox: false } } });
    expect(kinds(compareState(withImportEnv, sandboxed, opts()))).toEqual(['environment_differs']);
    // Unknown environment (a v1 answer without is_sandbox): nothing to compare.
    expect(compareState(row(), state({ products: [{ id: 'pro.monthly', active: true, expires_at: null }] }), opts({ environment: 'sandbox' }))).toEqual([]);
  });

  it('checks an expected entitlement and expiry the import answer did not show', () => {
    const noSummary = row({ subscriber: undefined });
    expect(compareState(noSummary, state(), opts({ entitlement: 'premium', expiresAt: iso(NOW + 30 * DAY) }))).toEqual([]);
    expect(kinds(compareState(noSummary, state(), opts({ entitlement: 'gold' })))).toEqual(['entitlement_missing']);
    expect(kinds(compareState(noSummary, state(), opts({ entitlement: 'premium', expiresAt: iso(NOW + 90 * DAY) })))).toEqual(['expiry_differs']);
    // expected_active false: a lapsed purchase imported for its history; not required to be active.
    expect(compareState(noSummary, state({ active_entitlements: [] }), opts({ entitlement: 'premium', active: false }))).toEqual([]);
    // expiresAt without an entitlement: the row product's expiry.
    expect(kinds(compareState(noSummary, state(), opts({ expiresAt: iso(NOW + 90 * DAY) })))).toEqual(['expiry_differs']);
    // Same entitlement as the import answer: existence is checked once, the expected expiry too.
    expect(kinds(compareState(row(), state({ active_entitlements: [] }), opts({ entitlement: 'premium' })))).toEqual(['entitlement_missing']);
    expect(kinds(compareState(row(), state(), opts({ entitlement: 'premium', expiresAt: iso(NOW + 90 * DAY) })))).toEqual(['expiry_differs']);
  });

  it('compareReceiptExpiries: earlier than the receipt beyond the tolerance is a mismatch; later (a renewal) is not', () => {
    const ref = { src: 'a.csv', line: 2, app_user_id: 'u1' };
    const receipt = [{ productId: 'pro.monthly', expiresMs: NOW + 30 * DAY }];
    const at = (ms: number | null) => state({ products: [{ id: 'pro.monthly', active: true, expires_at: ms === null ? null : iso(ms) }] });
    expect(compareReceiptExpiries(ref, at(NOW + 30 * DAY), receipt, DAY)).toEqual([]);
    expect(compareReceiptExpiries(ref, at(NOW + 90 * DAY), receipt, DAY)).toEqual([]);
    expect(compareReceiptExpiries(ref, at(null), receipt, DAY)).toEqual([]);
    expect(compareReceiptExpiries(ref, at(NOW + 30 * DAY - DAY / 2), receipt, DAY)).toEqual([]);
    expect(compareReceiptExpiries(ref, at(NOW + 20 * DAY), receipt, DAY)).toEqual([
      {
        ...ref,
        product_id: 'pro.monthly',
        kind: 'receipt_expiry_differs',
        expected: `pro.monthly expires ${iso(NOW + 30 * DAY)} (receipt)`,
        actual: `pro.monthly expires ${iso(NOW + 20 * DAY)}`,
      },
    ]);
    // the latest of the customer's entries for the product counts
    const two = state({
      products: [
        { id: 'pro.monthly', active: false, expires_at: iso(NOW - DAY) },
        { id: 'pro.monthly', active: true, expires_at: iso(NOW + 30 * DAY) },
      ],
    });
    expect(compareReceiptExpiries(ref, two, receipt, DAY)).toEqual([]);
  });

  it('compareReceiptExpiries: a receipt subscription the customer lacks is product_missing, unless the row names it (compareState says so)', () => {
    const receipt = [
      { productId: 'pro.monthly', expiresMs: NOW + 30 * DAY },
      { productId: 'pro.yearly', expiresMs: NOW + 300 * DAY },
    ];
    const found = compareReceiptExpiries({ src: 'a.csv', line: 2, app_user_id: 'u1' }, state(), receipt, DAY);
    expect(found).toEqual([
      expect.objectContaining({
        product_id: 'pro.yearly',
        kind: 'product_missing',
        expected: `product pro.yearly (receipt: expires ${iso(NOW + 300 * DAY)})`,
        actual: "not among the customer's products (pro.monthly)",
      }),
    ]);
    expect(compareReceiptExpiries({ src: 'a.csv', line: 2, app_user_id: 'u1', product_id: 'pro.yearly' }, state(), receipt, DAY)).toEqual([]);
    expect(compareReceiptExpiries({ src: 'a.csv', line: 2, app_user_id: 'u1' }, { exists: false, active_entitlements: [], products: [] }, receipt, DAY)).toEqual([]);
  });

  it('rowExpectations reads an outcome`s expect field defensively', () => {
    const base = { status: 'succeeded' } as Outcome;
    expect(rowExpectations(base)).toBeUndefined();
    expect(rowExpectations({ ...base, expect: { entitlement: 'premium', expiresAt: 'not a date', environment: 'sandbox', active: false } })).toEqual({
      entitlement: 'premium',
      environment: 'sandbox',
      active: false,
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// verifyRun against the sandbox, with a ledger made by the real pipeline
// ---------------------------------------------------------------------------------------------------------

const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id'];
const tok = (name: string, directive = '') => `tok-${name}-abcdefghijklmnopqrstuvwxyz${directive ? `.sbx-${directive}` : ''}`;

/** Users and the rows the test migrates; comments say what is done to each user afterwards. */
const ROWS: string[][] = [
  ['android', 'u_ok', tok('ok1'), 'p.monthly'], // untouched, two rows
  ['android', 'u_ok', tok('ok2'), 'p.yearly'],
  ['android', 'u_deleted', tok('del'), 'p.monthly'], // deleted → user_missing
  ['android', 'u_refund', tok('ref1'), 'p.a'], // p.a removed; premium still held through p.b → product_missing only
  ['android', 'u_refund', tok('ref2'), 'p.b'],
  ['android', 'u_solo', tok('solo'), 'p.solo'], // its only product removed → product_missing + entitlement_missing
  ['android', 'u_expired', tok('exp'), 'p.monthly'], // expired yesterday → entitlement_inactive
  ['android', 'u_short', tok('short'), 'p.monthly'], // now ends in 5 days instead of 30 → expiry_differs
  ['android', 'u_moved', tok('moved'), 'p.monthly'], // transferred to another user → transferred
  ['android', 'u_env', tok('env'), 'p.monthly'], // made a sandbox purchase; expected production → environment_differs
  ['android', 'u_life', tok('life', 'lifetime'), 'p.lifetime'], // one-time purchase: read under /purchases, matches
  ['android', 'u_lapsed', tok('lapsed', 'expired'), 'p.old'], // expired at import already: nothing to check
  ['android', 'u_unreadable', tok('unread'), 'p.monthly'], // the reader fails for it → read_failed
];
const USERS = [...new Set(ROWS.map((r) => r[1] as string))];

describe('verifyRun against the sandbox (real HTTP, real Redis, a ledger from the pipeline)', () => {
  const fx = pipelineFixture('verify', { apiKeys: [SANDBOX_KEY, SECRET] });
  let redis: Redis;
  let ledger: RunLedger;
  const readers: CustomerReader[] = [];

  const reader = (extra: Partial<CustomerReaderOptions> = {}): CustomerReader => {
    const r = new CustomerReader({
      baseUrl: fx.sandbox.url,
      secretKey: SECRET,
      projectId: 'proj_sandbox',
      api: 'v2',
      timeoutMs: 3000,
      ratePerMinute: 6000,
      backoffBaseMs: 20,
      ...extra,
    });
    readers.push(r);
    return r;
  };

  beforeAll(async () => {
    const source = await writeCsv(fx.dir, 'verify.csv', HEADER, ROWS);
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'verify', outDir: join(fx.dir, 'report') });
    expect(result.summary.rows_succeeded).toBe(ROWS.length);
    redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    ledger = new RunLedger(redis, fx.prefix, 'verify');

    const sb = fx.sandbox;
    expect(sb.deleteSubscriber('u_deleted')).toBe(true);
    expect(sb.removePurchase('u_refund', 'p.a')).toBe(true);
    expect(sb.removePurchase('u_solo', 'p.solo')).toBe(true);
    expect(sb.updatePurchase('u_expired', 'p.monthly', { expiresDateMs: Date.now() - DAY })).toBe('ok');
    expect(sb.updatePurchase('u_short', 'p.monthly', { expiresDateMs: Date.now() + 5 * DAY })).toBe('ok');
    expect(sb.transferSubscriber('u_moved', 'someone_else')).toBe(true);
    expect(sb.updatePurchase('u_env', 'p.monthly', { environment: 'sandbox' })).toBe('ok');
  });

  afterAll(async () => {
    for (const r of readers) await r.close();
    redis?.disconnect();
  });

  it('finds every kind of mismatch, reads each user once over v2 and creates nobody', async () => {
    const before = fx.sandbox.stats();
    const lastSeen = new Map(USERS.map((u) => [u, fx.sandbox.peekSubscriber(u)?.last_seen]));
    const v2 = reader();
    const wrapped = {
      read: (id: string) => (id === 'u_unreadable' ? Promise.resolve({ ok: false as const, status: 503, reason: 'http_503', message: 'Service Unavailable' }) : v2.read(id)),
    };
    const progress: [number, number][] = [];
    const result = await verifyRun({
      ledger,
      reader: wrapped,
      concurrency: 4,
      onProgress: (done, total) => progress.push([done, total]),
      expectations: (o) => (o.app_user_id === 'u_env' ? { environment: 'production' } : undefined),
    });

    const byUser = (user: string) => result.mismatches.filter((m) => m.app_user_id === user).map((m) => `${m.product_id}:${m.kind}`);
    expect(byUser('u_ok')).toEqual([]);
    expect(byUser('u_deleted')).toEqual(['p.monthly:user_missing']);
    expect(byUser('u_refund')).toEqual(['p.a:product_missing']);
    expect(byUser('u_solo')).toEqual(['p.solo:entitlement_missing', 'p.solo:product_missing']);
    expect(byUser('u_expired')).toEqual(['p.monthly:entitlement_inactive']);
    expect(byUser('u_short')).toEqual(['p.monthly:expiry_differs']);
    expect(byUser('u_moved')).toEqual(['p.monthly:transferred']);
    expect(byUser('u_env')).toEqual(['p.monthly:environment_differs']);
    expect(byUser('u_life')).toEqual([]);
    expect(byUser('u_lapsed')).toEqual([]);
    expect(byUser('u_unreadable')).toEqual(['p.monthly:read_failed']);
    const all = new Set(result.mismatches.map((m) => m.kind));
    expect([...all].sort()).toEqual(
      ['entitlement_inactive', 'entitlement_missing', 'environment_differs', 'expiry_differs', 'product_missing', 'read_failed', 'transferred', 'user_missing'].sort(),
    );
    const moved = result.mismatches.find((m) => m.kind === 'transferred');
    expect(moved).toMatchObject({ src: expect.stringContaining('verify.csv'), line: 10, expected: 'original_app_user_id u_moved', actual: 'original_app_user_id someone_else' });

    expect(result.users).toBe(USERS.length);
    expect(result.checked).toBe(ROWS.length);
    // u_ok (2 rows), u_refund's p.b, u_life, u_lapsed
    expect(result.matched).toBe(5);
    expect(result.aborted).toBeUndefined();
    expect(progress.length).toBe(USERS.length);
    expect(progress.at(-1)).toEqual([USERS.length, USERS.length]);

    // Each user read once: one customer GET per user the sandbox was asked about; the lists only for customers that exist.
    const after = fx.sandbox.stats();
    const delta = (path: string) => (after.byPath[path] ?? 0) - (before.byPath[path] ?? 0);
    expect(delta(ROUTE_V2_CUSTOMER)).toBe(USERS.length - 1);
    expect(delta(ROUTE_V2_SUBSCRIPTIONS)).toBe(USERS.length - 2);
    expect(delta(ROUTE_V2_PURCHASES)).toBe(USERS.length - 2);
    expect(delta(ROUTE_SUBSCRIBER)).toBe(0);
    // No side effects: the deleted user stays deleted, nobody new, nobody's last_seen moved.
    expect(after.subscribers).toBe(before.subscribers);
    expect(fx.sandbox.peekSubscriber('u_deleted')).toBeUndefined();
    for (const u of USERS) expect(fx.sandbox.peekSubscriber(u)?.last_seen).toBe(lastSeen.get(u));
  });

  it('reads a never-posted user as missing over v2 without creating it', async () => {
    const before = fx.sandbox.stats().subscribers;
    const result = await reader().read('never_posted');
    expect(result).toEqual({ ok: true, state: { exists: false, active_entitlements: [], products: [] } });
    expect(fx.sandbox.stats().subscribers).toBe(before);
    expect(fx.sandbox.peekSubscriber('never_posted')).toBeUndefined();
  });

  it('v1 fallback: the same state, but GET /v1/subscribers creates the users it reads', async () => {
    const v1 = reader({ api: 'v1', projectId: undefined });
    const v2 = reader();
    const a = await v1.read('u_ok');
    const b = await v2.read('u_ok');
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    const norm = (s: CustomerState) => ({
      ...s,
      // v1 writes whole seconds, v2 milliseconds.
      products: [...s.products].sort((x, y) => (x.id < y.id ? -1 : 1)).map((p) => ({ ...p, expires_at: p.expires_at && Math.floor(Date.parse(p.expires_at) / 1000) })),
      active_entitlements: s.active_entitlements.map((e) => ({ ...e, expires_at: e.expires_at && Math.floor(Date.parse(e.expires_at) / 1000) })),
    });
    expect(norm(a.state)).toEqual(norm(b.state));
    expect(a.state.products.map((p) => p.id).sort()).toEqual(['p.monthly', 'p.yearly']);

    const before = fx.sandbox.stats().subscribers;
    const ghost = await v1.read('never_posted_v1');
    expect(ghost).toEqual({ ok: true, state: { exists: false, created_by_read: true, original_app_user_id: 'never_posted_v1', active_entitlements: [], products: [] } });
    // The side effect the README warns about: the read created the subscriber.
    expect(fx.sandbox.stats().subscribers).toBe(before + 1);
    expect(fx.sandbox.peekSubscriber('never_posted_v1')).toBeDefined();

    // verifyRun over v1 finds the same user_missing, and brings u_deleted back as an empty subscriber.
    const result = await verifyRun({ ledger, reader: v1, concurrency: 4 });
    expect(result.mismatches.filter((m) => m.kind === 'user_missing')).toEqual([
      expect.objectContaining({ app_user_id: 'u_deleted', actual: expect.stringMatching(/created an empty one/) }),
    ]);
    expect(fx.sandbox.peekSubscriber('u_deleted')).toMatchObject({ subscriptions: {}, entitlements: {} });
    fx.sandbox.deleteSubscriber('u_deleted');
  });

  it('stops at a failure every read would repeat (unknown project) and says why', async () => {
    const result = await verifyRun({ ledger, reader: reader({ projectId: 'proj_wrong' }), concurrency: 2 });
    expect(result.aborted).toMatchObject({ reason: 'project_not_found', status: 404 });
    expect(result.users).toBeLessThanOrEqual(2);
    expect(result.mismatches.every((m) => m.kind === 'read_failed')).toBe(true);
    expect(result.matched).toBe(0);
  });

  it('reports auth failures without the key; refuses a public key for v2 up front', async () => {
    const wrong = await reader({ secretKey: 'sk_not_a_real_key' }).read('u_ok');
    expect(wrong).toMatchObject({ ok: false, status: 401, reason: 'authentication_error' });
    expect(JSON.stringify(wrong)).not.toContain('sk_not_a_real_key');
    expect(() => reader({ secretKey: SANDBOX_KEY })).toThrow(/secret API key/);
    expect(() => reader({ projectId: undefined })).toThrow(/project id/);
  });

  it('follows next_page through every list and the catalog', async () => {
    fx.sandbox.configure({ v2PageSize: 1 });
    try {
      const before = fx.sandbox.stats().byPath;
      const result = await reader().read('u_ok');
      expect(result.ok && result.state.products.map((p) => p.id).sort()).toEqual(['p.monthly', 'p.yearly']);
      expect(result.ok && result.state.active_entitlements.map((e) => e.id)).toEqual(['premium']);
      const after = fx.sandbox.stats().byPath;
      expect((after[ROUTE_V2_SUBSCRIPTIONS] ?? 0) - (before[ROUTE_V2_SUBSCRIPTIONS] ?? 0)).toBe(2);
      expect((after['GET /v2/projects/{project_id}/products'] ?? 0) - (before['GET /v2/projects/{project_id}/products'] ?? 0)).toBeGreaterThan(5);
    } finally {
      fx.sandbox.configure({ v2PageSize: 20 });
    }
  });

  it('retries 5xx and resets until the read succeeds', async () => {
    fx.sandbox.configure({ fault5xxRate: 0.3, resetRate: 0.1, seed: 7 });
    try {
      const r = reader({ maxTries: 10, backoffBaseMs: 5, backoffMaxMs: 20 });
      for (const u of ['u_ok', 'u_life', 'u_refund']) expect((await r.read(u)).ok).toBe(true);
      expect(fx.sandbox.stats().faults['5xx']).toBeGreaterThan(0);
    } finally {
      fx.sandbox.configure({ fault5xxRate: 0, resetRate: 0 });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// App Store rows: each subscription held against the receipt, with no expected_* column (issue 15)
// ---------------------------------------------------------------------------------------------------------

describe('verify of App Store rows against their receipts (the verify command, the sandbox over HTTP)', () => {
  const fx = pipelineFixture('verify-apple', { apiKeys: [SANDBOX_KEY, SECRET] });
  const BUNDLE = 'com.example.verify';
  // receipts hold whole seconds
  const BASE = Math.floor(Date.now() / 1000) * 1000;
  const at = (days: number): number => BASE + days * DAY;
  let source = '';
  let config: ReturnType<typeof testConfig>;
  const verifyConfig = () => ({ ...config, secretKey: SECRET, projectId: 'proj_sandbox' });

  beforeAll(async () => {
    const signer = await appleSigner();
    let txn = 500_000;
    /** A receipt of one subscription (one renewal a month up to `lastDays`, its latest expiry), and any extra purchases. */
    const receipt = (productId: string, lastDays: number, extra: { productId: string; expiresMs?: number; cancellationMs?: number }[] = []): Promise<string> => {
      const original = String(++txn);
      const purchases = [0, 1].map((i) => ({
        productId,
        transactionId: i === 0 ? original : String(++txn),
        originalTransactionId: original,
        purchaseMs: at(lastDays - (2 - i) * 30),
        expiresMs: at(lastDays - (1 - i) * 30),
      }));
      const more = extra.map((e) => ({ ...e, transactionId: String(++txn), originalTransactionId: String(txn), purchaseMs: at(-60) }));
      return signer.receipt({ environment: 'Production', bundleId: BUNDLE, creationMs: at(-1), purchases: [...purchases, ...more] });
    };
    const rows: string[][] = [
      // matches; a consumable has no expiry, and a refunded purchase (RevenueCat grants nothing for it) promises none
      ['ios', 'a_match', await receipt('pro_monthly', 20, [{ productId: 'coins' }, { productId: 'pro_weekly', expiresMs: at(40), cancellationMs: at(-50) }])],
      ['ios', 'a_short', await receipt('pro_monthly', 20)], // moved 15 days earlier → receipt_expiry_differs
      ['ios', 'a_lapsed', await receipt('pro_monthly', -10)], // expired before the import, moved 30 days earlier: only the receipt can tell
      ['ios', 'a_renewed', await receipt('pro_monthly', 20)], // renewed for 30 days more: later is fine
      ['ios', 'a_slight', await receipt('pro_monthly', 20)], // an hour earlier: within the tolerance (a day)
      ['ios', 'a_gone', await receipt('pro_yearly', 200)], // removed from the customer → product_missing (receipt)
      [
        'ios',
        'a_sk2',
        await signer.signedTransaction({
          environment: 'Production',
          bundleId: BUNDLE,
          signedMs: at(-1),
          transactionId: String(++txn),
          originalTransactionId: String(txn),
          productId: 'pro_monthly',
          purchaseMs: at(-10),
          expiresMs: at(20),
          type: 'Auto-Renewable Subscription',
        }),
      ], // a StoreKit 2 signed transaction, moved 10 days earlier → receipt_expiry_differs
      ['android', 'g_ok', token(900), 'p.monthly'], // not an App Store row: no receipt to compare
    ];
    source = await writeCsv(
      fx.dir,
      'apple.csv',
      ['platform', 'app_user_id', 'fetch_token', 'product_id'],
      rows.map((r) => (r.length === 3 ? [...r, ''] : r)),
    );
    config = testConfig(fx.prefix, fx.sandbox.url);
    const result = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'verify-apple', outDir: join(fx.dir, 'report') });
    expect(result.summary.rows_succeeded).toBe(rows.length);

    const sb = fx.sandbox;
    // what the sandbox granted from each receipt is the receipt's latest expiry
    expect(Date.parse(sb.peekSubscriber('a_match')?.subscriptions.pro_monthly?.expires_date ?? '')).toBe(at(20));
    expect(sb.updatePurchase('a_short', 'pro_monthly', { expiresDateMs: at(5) })).toBe('ok');
    expect(sb.updatePurchase('a_lapsed', 'pro_monthly', { expiresDateMs: at(-40) })).toBe('ok');
    expect(sb.updatePurchase('a_renewed', 'pro_monthly', { expiresDateMs: at(50) })).toBe('ok');
    expect(sb.updatePurchase('a_slight', 'pro_monthly', { expiresDateMs: at(20) - 3_600_000 })).toBe('ok');
    expect(sb.removePurchase('a_gone', 'pro_yearly')).toBe(true);
    expect(sb.updatePurchase('a_sk2', 'pro_monthly', { expiresDateMs: at(10) })).toBe('ok');
  });

  it('reports an App Store subscription that ends earlier than its receipt says, with both dates, and nothing for those that match', async () => {
    const verified = await verifyMigration({ config: verifyConfig(), logger: silentLogger(), runId: 'verify-apple', outDir: join(fx.dir, 'report') });
    expect(verified.summary.verify).toMatchObject({ api: 'v2', checked: 8, users: 8, receipts: { read: 7, unread: 0, unavailable: 0 } });
    const fromVerify = (await readCsvFile(verified.files.mismatches)).filter((m) => m.stage === 'verify');
    const byUser = (user: string) => fromVerify.filter((m) => m.app_user_id === user).map((m) => `${m.product_id}:${m.kind}`);
    for (const user of ['a_match', 'a_renewed', 'a_slight', 'g_ok']) expect(byUser(user)).toEqual([]);
    // a_short's entitlement also ends earlier than the import answer said; a_lapsed's had lapsed, so the receipt alone tells
    expect(byUser('a_short')).toContain('pro_monthly:receipt_expiry_differs');
    expect(byUser('a_lapsed')).toEqual(['pro_monthly:receipt_expiry_differs']);
    expect(byUser('a_sk2')).toContain('pro_monthly:receipt_expiry_differs');
    // the entitlement it granted is gone too (the import answer's check); the receipt names the product
    expect(byUser('a_gone')).toContain('pro_yearly:product_missing');
    const short = fromVerify.find((m) => m.app_user_id === 'a_short' && m.kind === 'receipt_expiry_differs');
    expect(short).toMatchObject({ line: '3', expected: `pro_monthly expires ${iso(at(20))} (receipt)`, actual: `pro_monthly expires ${iso(at(5))}` });
    const lapsed = fromVerify.find((m) => m.app_user_id === 'a_lapsed');
    expect(lapsed).toMatchObject({ expected: `pro_monthly expires ${iso(at(-10))} (receipt)`, actual: `pro_monthly expires ${iso(at(-40))}` });
    expect(verified.result.matched).toBe(4);
    expect(verified.summary.verify?.mismatched).toBe(4);
    expect(verified.exitCode).toBe(1);
  });

  it('a source changed since the run read it leaves the receipts uncompared, says so, and keeps every other check', async () => {
    await utimes(source, new Date(), new Date(Date.now() + 60_000));
    const verified = await verifyMigration({ config: verifyConfig(), logger: silentLogger(), runId: 'verify-apple', outDir: join(fx.dir, 'report-changed') });
    expect(verified.summary.verify?.receipts).toMatchObject({ read: 0, unavailable: 7, unavailable_reason: expect.stringContaining('changed since the run read it') });
    const kinds = (await readCsvFile(verified.files.mismatches)).filter((m) => m.stage === 'verify').map((m) => `${m.app_user_id}:${m.kind}`);
    expect(kinds.filter((k) => k.endsWith(':receipt_expiry_differs'))).toEqual([]);
    // a_short's entitlement check (import answer) does not need the receipt
    expect(kinds).toContain('a_short:expiry_differs');
  });
});

describe('reading under the v2 rate limit', () => {
  let sb: Sandbox;
  const readers: CustomerReader[] = [];
  const users = Array.from({ length: 20 }, (_, i) => `rl_user_${i}`);

  beforeAll(async () => {
    sb = await startSandbox({ apiKeys: [SANDBOX_KEY, SECRET] });
    for (const u of users) {
      const res = await fetch(`${sb.url}/v1/receipts`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${SANDBOX_KEY}`, 'Content-Type': 'application/json', 'X-Platform': 'android' },
        body: JSON.stringify({ app_user_id: u, fetch_token: tok(u), product_id: 'p.monthly', create_events: false, should_update_last_seen_fields: false }),
      });
      expect(res.status).toBe(200);
    }
  });
  afterAll(async () => {
    for (const r of readers) await r.close();
    await sb?.close();
  });

  const reader = (extra: Partial<CustomerReaderOptions>): CustomerReader => {
    const r = new CustomerReader({ baseUrl: sb.url, secretKey: SECRET, projectId: 'proj_sandbox', api: 'v2', timeoutMs: 5000, ratePerMinute: 480, ...extra });
    readers.push(r);
    return r;
  };

  async function readAll(r: CustomerReader): Promise<boolean[]> {
    const { default: pLimit } = await import('p-limit');
    const limit = pLimit(8);
    return Promise.all(users.map((u) => limit(async () => (await r.read(u)).ok)));
  }

  it('20 users under a limit below its own rate: follows the limit header, a couple of 429s at most, and finishes', async () => {
    // 300/min counted over 3 s windows (15 per window): the minute compressed so the test takes seconds.
    sb.configure({ v2RateLimitPerMinute: 300, v2RateLimitWindowMs: 3000 });
    const r = reader({ ratePerMinute: 480 });
    const started = performance.now();
    const oks = await readAll(r);
    expect(oks.every(Boolean)).toBe(true);
    expect(r.ratePerMinute).toBeLessThanOrEqual(300);
    const stats = sb.stats();
    expect(stats.byPath[ROUTE_V2_CUSTOMER]).toBe(20);
    // customer, subscriptions, purchases for each user, the catalog once, and any request a 429 turned away
    expect(stats.v2.requests).toBe(20 * 3 + 2 + stats.v2.rateLimited);
    expect(stats.v2.rateLimited).toBeLessThanOrEqual(2);
    // 60 customer-domain requests at 300/min with 15 admitted per 3 s: at least 9 s.
    expect(performance.now() - started).toBeGreaterThan(8_000);
  });

  it('without limit headers it finds the limit by its 429s, honours backoff_ms and still finishes', async () => {
    sb.configure({ v2RateLimitPerMinute: 120, v2RateLimitWindowMs: 1000, rateLimitHeaders: false });
    const before = sb.stats().v2.rateLimited;
    const r = reader({ ratePerMinute: 1200, maxTries: 8 });
    const few = users.slice(0, 2);
    const oks = await Promise.all(few.map((u) => r.read(u)));
    expect(oks.map((o) => o.ok)).toEqual([true, true]);
    expect(sb.stats().v2.rateLimited).toBeGreaterThan(before);
    expect(r.ratePerMinute).toBeLessThan(1200);
  });
});

describe('TokenBucket', () => {
  it('paces takes at the rate, and a pause holds every take', async () => {
    const bucket = new TokenBucket(600, 1); // one per 100 ms
    const started = performance.now();
    for (let i = 0; i < 6; i++) await bucket.take();
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(1500);
    bucket.pause(300);
    const t = performance.now();
    await bucket.take();
    expect(performance.now() - t).toBeGreaterThanOrEqual(290);
  });
});
