// Rows given by an Apple transaction id, through the whole pipeline (issue 17): real Redis, the sandbox over HTTP
// serving both RevenueCat's POST /v1/receipts and the App Store Server API's transaction lookup (its own key pair,
// JWT checks, signed transactions, per-app rate limit with a millisecond Retry-After, a revocable key). Shown:
// transaction-id rows imported with one lookup each and their signed transactions posted; an id known only in the
// sandbox environment found there; an unknown id failed apple_transaction_not_found; a malformed id rejected at
// ingest; Apple's 429 honoured without stalling the other rows; a revoked key stopping only the lookups, and
// another key sending the rest; a JWT renewed before it lapses; `run` refusing without the key, `plan` saying what it needs;
// renewals of one subscription given by several transaction ids of one user ending in one POST, the others superseded;
// a looked-up purchase another user holds (an earlier run's receipt, another user's looked-up row of this run) held
// as a conflict, or posted with --on-conflict send.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AppStoreServerApiClient, type LookupResult } from '../src/appstore/serverApiClient.js';
import { ServerApiTokens } from '../src/appstore/serverApiJwt.js';
import { planMigration } from '../src/commands/plan.js';
import { runMigration } from '../src/commands/run.js';
import { ConfigError, type Config } from '../src/config.js';
import { createLogger, silentLogger } from '../src/logger.js';
import { statusText } from '../src/cli/print.js';
import { runStatus } from '../src/commands/status.js';
import type { RunProgress } from '../src/session/rateProgress.js';
import { startSandbox, type AppleTransactionRecord, type Sandbox, type SandboxOptions } from '../src/sandbox/index.js';
import { pipelineFixture } from './support/fixture.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { readSignedTransaction } from '../src/appstore/signedTransaction.js';
import { Redis } from 'ioredis';
import { redisUrl } from './support/redis.js';
import { appleSigner } from './support/appleReceipts.js';

const BUNDLE = 'com.example.sandbox';
const HEADER = ['platform', 'app_user_id', 'receipt', 'transaction_id', 'product_id'];
const DAY = 86_400_000;

/** Transactions the stand-in knows: ids 2000000000000000 + i, each its own purchase. */
function transactions(n: number, environment: 'Production' | 'Sandbox' = 'Production', from = 0): AppleTransactionRecord[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => ({
    transactionId: String(2_000_000_000_000_000 + from + i),
    originalTransactionId: String(2_000_000_000_000_000 + from + i),
    productId: 'sandbox.monthly',
    bundleId: BUNDLE,
    environment,
    purchaseDate: now - DAY,
    expiresDate: now + 29 * DAY,
    type: 'Auto-Renewable Subscription',
  }));
}

const txRow = (user: string, id: string): string[] => ['ios', user, '', id, ''];
const androidRow = (i: number): string[] => ['android', `droid-${i}`, token(50_000 + i), '', 'gold'];

async function withSandbox<T>(options: SandboxOptions, fn: (sb: Sandbox) => Promise<T>): Promise<T> {
  const sb = await startSandbox({ latencyMs: 1, appleBundleIds: [BUNDLE], ...options });
  try {
    return await fn(sb);
  } finally {
    await sb.close();
  }
}

/** The pipeline's config with the stand-in's key (as the environment would give it) and its one base URL. */
function appleConfig(sb: Sandbox, prefix: string, overrides: Partial<Record<keyof Config, unknown>> = {}): Config {
  const creds = sb.appleCredentials();
  return testConfig(prefix, sb.url, {
    appleIssuerId: creds.issuerId,
    appleKeyId: creds.keyId,
    applePrivateKey: creds.privateKeyPem,
    appleBundleIds: [BUNDLE],
    appStoreApiUrl: sb.url,
    concurrency: 8,
    ...overrides,
  });
}

describe('rows given by an Apple transaction id', () => {
  const fx = pipelineFixture('applelookup');

  it('imports each with one lookup and posts its signed transaction; unknown ids fail, malformed ones are rejected', async () => {
    const known = transactions(20);
    const sandboxOnly = transactions(2, 'Sandbox', 500);
    await withSandbox({ appleTransactions: [...known, ...sandboxOnly] }, async (sb) => {
      const rows = [
        ...known.map((t, i) => txRow(`apple-${i}`, t.transactionId)),
        ...sandboxOnly.map((t, i) => txRow(`apple-sbx-${i}`, t.transactionId)),
        txRow('apple-unknown', '2999999999999999'),
        txRow('apple-bad', '2000-0001'),
        ...Array.from({ length: 10 }, (_, i) => androidRow(i)),
      ];
      const source = await writeCsv(fx.dir, 'lookups.csv', HEADER, rows);
      const out = join(fx.dir, 'lookups');
      const prefix = fx.newPrefix('lookups');
      const result = await runMigration({ config: appleConfig(sb, prefix), logger: silentLogger(), sources: [source], runId: 'lookups', outDir: out });

      expect(result.summary).toMatchObject({ status: 'complete', rows_read: 34, rows_rejected: 1, rows_succeeded: 32, rows_failed: 1 });
      expect(result.exitCode).toBe(1);
      const api = sb.stats().appStoreServerApi;
      // One lookup per known id (the unknown one is asked once: one base URL answers for both environments).
      expect(api.found).toBe(22);
      expect(api.maxLookupsPerTransaction).toBe(1);
      expect(api.byErrorCode).toEqual({ '4040010': 1 });
      expect(api.unauthorized).toBe(0);
      // What RevenueCat got for the App Store rows: their signed transactions (JWS), never a transaction id.
      const posted = sb.receiptPostCounts().filter((p) => p.app_user_id.startsWith('apple-'));
      expect(posted).toHaveLength(22);
      for (const p of posted) expect(p.fetch_token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      const failed = await readCsvFile(join(out, 'failed.csv'));
      expect(failed).toEqual([expect.objectContaining({ app_user_id: 'apple-unknown', transaction_id: '2999999999999999', error_reason: 'apple_transaction_not_found' })]);
      const rejected = await readCsvFile(join(out, 'rejected.csv'));
      expect(rejected).toEqual([expect.objectContaining({ app_user_id: 'apple-bad', error_reason: expect.stringContaining('decimal digits only') as unknown })]);

      // The same command again: every looked-up row is migrated already; nothing is looked up or posted again.
      const again = await runMigration({
        config: appleConfig(sb, prefix),
        logger: silentLogger(),
        sources: [source],
        runId: 'lookups',
        outDir: join(fx.dir, 'lookups-again'),
      });
      expect(again.summary.rows_succeeded).toBe(32);
      expect(sb.stats().appStoreServerApi.found).toBe(22);
    });
  });

  it("asks Apple's production first and its sandbox environment on 4040010", async () => {
    const [production] = transactions(1, 'Production', 700);
    const [sandboxOnly] = transactions(1, 'Sandbox', 800);
    await withSandbox({ appleTransactions: [production!, sandboxOnly!] }, async (sb) => {
      const creds = sb.appleCredentials();
      const client = new AppStoreServerApiClient({
        tokens: new ServerApiTokens({ issuerId: creds.issuerId, keyId: creds.keyId, privateKey: creds.privateKeyPem }),
        environments: { production: `${sb.url}/production`, sandbox: `${sb.url}/sandbox` },
        timeoutMs: 3000,
      });
      try {
        expect(await client.getTransaction(production!.transactionId, BUNDLE)).toMatchObject({ kind: 'found', environment: 'production' });
        expect(await client.getTransaction(sandboxOnly!.transactionId, BUNDLE)).toMatchObject({ kind: 'found', environment: 'sandbox' });
        expect(await client.getTransaction('2999999999999999', BUNDLE)).toMatchObject({ kind: 'response', status: 404, errorCode: 4040010, environment: 'sandbox' });
        expect(sb.stats().appStoreServerApi.byBasePath).toEqual({ '/production': 3, '/sandbox': 2 });
      } finally {
        await client.close();
      }
    });
  });

  it('renews its JWT before it lapses: a long run never sends an expired one', async () => {
    const [known] = transactions(1, 'Production', 900);
    await withSandbox({ appleTransactions: [known!] }, async (sb) => {
      const creds = sb.appleCredentials();
      const key = { issuerId: creds.issuerId, keyId: creds.keyId, privateKey: creds.privateKeyPem };
      const ask = async (tokens: ServerApiTokens): Promise<LookupResult> => {
        const client = new AppStoreServerApiClient({ tokens, baseUrl: sb.url, timeoutMs: 3000 });
        try {
          return await client.getTransaction(known!.transactionId, BUNDLE);
        } finally {
          await client.close();
        }
      };
      // The stand-in refuses a lapsed token (signed 30 minutes ago, valid 20).
      expect(await ask(new ServerApiTokens(key, { now: () => Date.now() - 30 * 60_000 }))).toMatchObject({ kind: 'response', status: 401 });
      expect(sb.stats().appStoreServerApi.unauthorizedBy).toEqual({ expired: 1 });
      // A token signed 19 minutes ago lapses in a minute: 15 minutes into the run it is renewed, not sent again.
      let clock = Date.now() - 19 * 60_000;
      const tokens = new ServerApiTokens(key, { now: () => clock });
      expect(await ask(tokens)).toMatchObject({ kind: 'found' });
      clock += 15 * 60_000;
      expect(await ask(tokens)).toMatchObject({ kind: 'found' });
      expect(sb.stats().appStoreServerApi).toMatchObject({ unauthorized: 1, found: 2, tokens: 2 });
    });
  });

  it("honours Apple's 429 (Retry-After in ms) without stalling: every row is imported, RevenueCat's rows unhindered", async () => {
    const known = transactions(30, 'Production', 1000);
    await withSandbox({ appleTransactions: known, appleRatePerSecond: 10 }, async (sb) => {
      const rows = [...known.map((t, i) => txRow(`paced-${i}`, t.transactionId)), ...Array.from({ length: 30 }, (_, i) => androidRow(100 + i))];
      const source = await writeCsv(fx.dir, 'paced.csv', HEADER, rows);
      const prefix = fx.newPrefix('paced');
      const started = Date.now();
      // What the bar is drawn from, every second (cli/display.ts): the lookups' rate beside RevenueCat's.
      const progress: RunProgress[] = [];
      // Lookups start at 50/s against a stand-in that admits 10/s per app: 429s come at once.
      const result = await runMigration({
        config: appleConfig(sb, prefix, { appleRate: 50 }),
        logger: silentLogger(),
        sources: [source],
        runId: 'paced',
        outDir: join(fx.dir, 'paced'),
        on: { progress: (s) => void progress.push(s) },
      });
      const elapsed = Date.now() - started;
      expect(result.exitCode).toBe(0);
      expect(result.summary.rows_succeeded).toBe(60);
      const api = sb.stats().appStoreServerApi;
      expect(api.rateLimited).toBeGreaterThan(0);
      expect(api.found).toBe(30);
      // Waiting until each Retry-After and no longer: 30 lookups at 10/s take about 3 s; a Retry-After read as
      // seconds (a UNIX time in ms) or as a fixed long pause would take far longer, as would a paused queue.
      expect(elapsed).toBeLessThan(30_000);
      // The lookups learned the stand-in's limit instead of hammering it, and `status` shows their rate.
      expect(api.rateLimited).toBeLessThan(30);
      const status = await runStatus({ config: appleConfig(sb, prefix), runId: 'paced', sampleMs: 0 });
      expect(status.appleRate).toMatchObject({ scope: 'apple' });
      expect(status.appleRate?.rate).toBeLessThan(50);
      expect(statusText('paced', status)).toContain('App Store Server API lookups:');
      const shown = progress.filter((p) => p.lookupRate !== undefined);
      expect(shown.length).toBeGreaterThan(0);
      expect(shown.every((p) => p.lookupRate?.scope === 'apple' && p.lookupRate.rate <= 50)).toBe(true);
      expect(progress.some((p) => (p.rates ?? []).length > 0)).toBe(true);
      // report.html draws the lookups' rate over time beside RevenueCat's, from the run's timeline.
      const html = await readFile(join(fx.dir, 'paced', 'report.html'), 'utf8');
      const values = (/class="lookup-rate-line"[^>]*data-values="([^"]*)"/.exec(html)?.[1] ?? '').split(' ').filter(Boolean).map(Number);
      expect(values.length).toBeGreaterThan(0);
      expect(values.every((v) => v > 0 && v <= 50)).toBe(true);
      expect(html).toContain('class="rate-line"');
      expect(html).toContain("App Store Server API lookups' rate (lookups/s)");

      // A run of the same prefix without transaction-id rows: the lookups' scope is there, but not its run's.
      const plain = await writeCsv(
        fx.dir,
        'plain.csv',
        HEADER,
        Array.from({ length: 5 }, (_, i) => androidRow(300 + i)),
      );
      const plainProgress: RunProgress[] = [];
      const other = await runMigration({
        config: appleConfig(sb, prefix),
        logger: silentLogger(),
        sources: [plain],
        runId: 'plain',
        outDir: join(fx.dir, 'plain'),
        on: { progress: (s) => void plainProgress.push(s) },
      });
      expect(other.exitCode).toBe(0);
      const plainStatus = await runStatus({ config: appleConfig(sb, prefix), runId: 'plain', sampleMs: 0 });
      expect(plainStatus.sharedRate).toBeDefined();
      expect(plainStatus.appleRate).toBeUndefined();
      expect(statusText('plain', plainStatus)).not.toContain('App Store Server API lookups');
      expect(plainProgress.every((p) => p.lookupRate === undefined)).toBe(true);
      const plainHtml = await readFile(join(fx.dir, 'plain', 'report.html'), 'utf8');
      expect(plainHtml).not.toContain('lookup-rate-line');
      expect(plainHtml).not.toContain('lookups/s');
    });
  });

  it('a revoked key stops only the lookups, naming its key id; another key sends the rest once', async () => {
    const known = transactions(8, 'Production', 2000);
    await withSandbox({ appleTransactions: known, appleKeyRevoked: true }, async (sb) => {
      const rows = [...known.map((t, i) => txRow(`revoked-${i}`, t.transactionId)), ...Array.from({ length: 12 }, (_, i) => androidRow(200 + i))];
      const source = await writeCsv(fx.dir, 'revoked.csv', HEADER, rows);
      const prefix = fx.newPrefix('revoked');
      const keyId = sb.appleCredentials().keyId;
      const logged: string[] = [];
      const logger = createLogger('debug', new Writable({ write: (chunk: Buffer, _enc, done) => (logged.push(chunk.toString()), done()) }));
      const first = await runMigration({ config: appleConfig(sb, prefix), logger, sources: [source], runId: 'revoked', outDir: join(fx.dir, 'revoked-a') });
      // The refusal is logged by key id; the private key appears nowhere.
      const pemBody = sb.appleCredentials().privateKeyPem.split('\n')[1] ?? 'unreachable';
      expect(logged.join('')).toContain(keyId);
      expect(logged.join('')).not.toContain(pemBody);
      expect(first.exitCode).toBe(3);
      // Every other row went on; no looked-up row failed: they wait.
      expect(first.summary).toMatchObject({ rows_succeeded: 12, rows_failed: 0 });
      const fatal = first.summary.fatal;
      expect(fatal?.message).toContain(keyId);
      expect(fatal?.message).toContain('APPLE_KEY_ID');
      expect(fatal?.keys).toEqual([expect.objectContaining({ platform: 'appstore', variable: 'APPLE_KEY_ID', status: 401, rows: 8 })]);
      expect(JSON.stringify(first.summary)).not.toContain('PRIVATE KEY');
      const refused = sb.stats().appStoreServerApi.unauthorized;
      expect(refused).toBeGreaterThan(0);
      expect(refused).toBeLessThanOrEqual(8);

      // The same key again: the rows stay parked and nothing is asked with it.
      const again = await runMigration({ config: appleConfig(sb, prefix), logger: silentLogger(), sources: [source], runId: 'revoked', outDir: join(fx.dir, 'revoked-b') });
      expect(again.exitCode).toBe(3);
      expect(sb.stats().appStoreServerApi.unauthorized).toBe(refused);

      // A new key (same issuer, another key id): the parked rows are looked up and posted, each once.
      sb.configure({ appleKeyRevoked: false, appleKeyId: 'NEWKEY0002' });
      const fixed = await runMigration({
        config: appleConfig(sb, prefix, { appleKeyId: 'NEWKEY0002' }),
        logger: silentLogger(),
        sources: [source],
        runId: 'revoked',
        outDir: join(fx.dir, 'revoked-c'),
      });
      expect(fixed.exitCode).toBe(0);
      expect(fixed.summary).toMatchObject({ rows_succeeded: 20, rows_failed: 0 });
      expect(sb.stats().appStoreServerApi.maxLookupsPerTransaction).toBe(1);
    });
  });

  it('renewals of one subscription end in one POST (the newest), the others superseded; each purchase posted once', async () => {
    const now = Date.now();
    // A subscription's transactions: `renewals + 1` monthly ones sharing the first one's id as original transaction id.
    const subscription = (first: number, renewals: number, productId = 'sandbox.monthly'): AppleTransactionRecord[] =>
      Array.from({ length: renewals + 1 }, (_, r) => {
        const purchaseDate = now - DAY - (renewals - r) * 30 * DAY;
        return {
          transactionId: String(2_000_000_000_000_000 + first + r),
          originalTransactionId: String(2_000_000_000_000_000 + first),
          productId,
          bundleId: BUNDLE,
          environment: 'Production' as const,
          purchaseDate,
          expiresDate: purchaseDate + 30 * DAY,
          type: 'Auto-Renewable Subscription' as const,
        };
      });
    const [r0, r1, r2] = subscription(3000, 2);
    const lifetime: AppleTransactionRecord = {
      transactionId: '2000000000003100',
      originalTransactionId: '2000000000003100',
      productId: 'sandbox.lifetime',
      bundleId: BUNDLE,
      environment: 'Production',
      purchaseDate: now - 90 * DAY,
      type: 'Non-Consumable',
    };
    const [s0, s1] = subscription(3200, 1, 'sandbox.annual');
    const [single] = subscription(3300, 0);
    await withSandbox({ appleTransactions: [r0!, r1!, r2!, lifetime, s0!, s1!, single!] }, async (sb) => {
      const filler = (from: number, n: number): string[][] => Array.from({ length: n }, (_, i) => androidRow(400 + from + i));
      // renew-a's rows are far apart and out of time order, the newest in the second file: the first ones are looked
      // up long before it is even read, and wait for it. renew-b's newest row comes first, an unknown id last.
      const first = await writeCsv(fx.dir, 'renewals-1.csv', HEADER, [
        txRow('renew-a', r1!.transactionId),
        txRow('renew-b', s1!.transactionId),
        ...filler(0, 20),
        txRow('renew-a', lifetime.transactionId),
        txRow('renew-b', s0!.transactionId),
        ...filler(20, 20),
        txRow('renew-a', r0!.transactionId),
        txRow('renew-single', single!.transactionId),
        txRow('renew-b', '2999999999999998'),
      ]);
      const second = await writeCsv(fx.dir, 'renewals-2.csv', HEADER, [...filler(40, 20), txRow('renew-a', r2!.transactionId)]);
      const out = join(fx.dir, 'renewals');
      const prefix = fx.newPrefix('renewals');
      const logged: string[] = [];
      const logger = createLogger('debug', new Writable({ write: (chunk: Buffer, _enc, done) => (logged.push(chunk.toString()), done()) }));
      const started = Date.now();
      const result = await runMigration({ config: appleConfig(sb, prefix), logger, sources: [first, second], runId: 'renewals', outDir: out });
      // renew-a's first rows waited for its last one, and were woken when it came rather than at the end of a wait
      expect(logged.filter((l) => l.includes('waits for the other rows of its lookup group')).length).toBeGreaterThan(0);
      expect(Date.now() - started).toBeLessThan(15_000);

      // 68 rows: 60 Android ones and 8 given by a transaction id; 3 superseded, 1 failed (the unknown id), the rest posted.
      expect(result.summary).toMatchObject({
        status: 'complete',
        rows_read: 68,
        rows_queued: 65,
        rows_succeeded: 64,
        rows_failed: 1,
        rows_superseded: 3,
        rows_pending: 0,
        rows_rejected: 0,
      });
      expect(result.summary.requests_sent).toBe(64);
      expect(result.exitCode).toBe(1);
      // Every id looked up once, the unknown one included.
      const api = sb.stats().appStoreServerApi;
      expect(api.found).toBe(7);
      expect(api.maxLookupsPerTransaction).toBe(1);
      expect(api.byErrorCode).toEqual({ '4040010': 1 });

      // What RevenueCat got: one POST per purchase, each the newest transaction of it.
      const posted = new Map<string, string[]>();
      for (const p of sb.receiptPostCounts().filter((c) => c.app_user_id.startsWith('renew-'))) {
        expect(p.posts).toBe(1);
        const ids = posted.get(p.app_user_id) ?? [];
        ids.push(readSignedTransaction(p.fetch_token).transactionId ?? '?');
        posted.set(p.app_user_id, ids);
      }
      expect(Object.fromEntries([...posted].map(([user, ids]) => [user, ids.sort()]))).toEqual({
        'renew-a': [r2!.transactionId, lifetime.transactionId].sort(),
        'renew-b': [s1!.transactionId],
        'renew-single': [single!.transactionId],
      });

      // superseded.csv names, for each, the row that was posted instead.
      const superseded = await readCsvFile(join(out, 'superseded.csv'));
      expect(superseded).toEqual([
        { source: first, line: '2', app_user_id: 'renew-a', superseded_by_source: second, superseded_by_line: '22' },
        { source: first, line: '25', app_user_id: 'renew-b', superseded_by_source: first, superseded_by_line: '3' },
        { source: first, line: '46', app_user_id: 'renew-a', superseded_by_source: second, superseded_by_line: '22' },
      ]);
      const failed = await readCsvFile(join(out, 'failed.csv'));
      expect(failed).toEqual([expect.objectContaining({ app_user_id: 'renew-b', transaction_id: '2999999999999998', error_reason: 'apple_transaction_not_found' })]);
      // Every group was deleted once its rows had decided, and no row is left waiting.
      const redis = new Redis(redisUrl());
      try {
        const [, left] = await redis.scan('0', 'MATCH', `${prefix}:lookup:*`, 'COUNT', 10_000);
        expect(left).toEqual([]);
      } finally {
        redis.disconnect();
      }

      // The same command again: nothing is looked up or posted again, the counts stand.
      const postsBefore = sb.stats().requests;
      const again = await runMigration({
        config: appleConfig(sb, prefix),
        logger: silentLogger(),
        sources: [first, second],
        runId: 'renewals',
        outDir: join(fx.dir, 'renewals-again'),
      });
      expect(again.summary).toMatchObject({ rows_succeeded: 64, rows_failed: 1, rows_superseded: 3, rows_pending: 0 });
      expect(sb.stats().appStoreServerApi.found).toBe(7);
      expect(sb.stats().requests).toBe(postsBefore);
    });
  });

  /** Transactions of one purchase (original transaction id `2000000000000000 + first`): the first and `renewals` more. */
  function purchaseOf(first: number, renewals: number): AppleTransactionRecord[] {
    const now = Date.now();
    return Array.from({ length: renewals + 1 }, (_, r) => {
      const purchaseDate = now - DAY - (renewals - r) * 30 * DAY;
      return {
        transactionId: String(2_000_000_000_000_000 + first + r),
        originalTransactionId: String(2_000_000_000_000_000 + first),
        productId: 'sandbox.monthly',
        bundleId: BUNDLE,
        environment: 'Production' as const,
        purchaseDate,
        expiresDate: purchaseDate + 30 * DAY,
        type: 'Auto-Renewable Subscription' as const,
      };
    });
  }

  it('holds a looked-up purchase an earlier run migrated for another user (its receipt); --on-conflict send posts it', async () => {
    const [t0, t1, t2] = purchaseOf(5000, 2);
    const shared = t0!.originalTransactionId;
    await withSandbox({ appleTransactions: [t0!, t1!, t2!] }, async (sb) => {
      // run 1: user A's App Store receipt holding the purchase, migrated
      const receipt = await (
        await appleSigner()
      ).receipt({
        environment: 'Production',
        bundleId: BUNDLE,
        creationMs: Date.now() - DAY,
        purchases: [
          { productId: 'sandbox.monthly', transactionId: t0!.transactionId, originalTransactionId: shared, purchaseMs: t0!.purchaseDate, expiresMs: t0!.expiresDate ?? null },
        ],
      });
      const night1 = await writeCsv(fx.dir, 'conflict-night-1.csv', HEADER, [['ios', 'owner-a', receipt, '', '']]);
      const prefix = fx.newPrefix('lookupconflict');
      const first = await runMigration({ config: appleConfig(sb, prefix), logger: silentLogger(), sources: [night1], runId: 'lc-night-1', outDir: join(fx.dir, 'lc-1') });
      expect(first.summary).toMatchObject({ rows_succeeded: 1, rows_conflict: 0 });
      expect(first.exitCode).toBe(0);
      const transfers = sb.transfers().length;

      // run 2: user B's row given by a transaction id of that purchase: looked up, then held, never posted
      const night2 = await writeCsv(fx.dir, 'conflict-night-2.csv', HEADER, [androidRow(700), txRow('thief-b', t1!.transactionId), androidRow(701)]);
      const second = await runMigration({ config: appleConfig(sb, prefix), logger: silentLogger(), sources: [night2], runId: 'lc-night-2', outDir: join(fx.dir, 'lc-2') });
      expect(second.summary).toMatchObject({
        status: 'complete',
        rows_read: 3,
        rows_queued: 2,
        rows_succeeded: 2,
        rows_conflict: 1,
        rows_held: 1,
        rows_pending: 0,
        rows_failed: 0,
      });
      expect(second.exitCode).toBe(1);
      expect(sb.stats().appStoreServerApi.found).toBe(1);
      expect(sb.receiptPostCounts().filter((p) => p.app_user_id === 'thief-b')).toEqual([]);
      expect(sb.transfers()).toHaveLength(transfers);
      expect(await readCsvFile(second.files.conflicts)).toEqual([
        {
          source: night2,
          line: '3',
          app_user_id: 'thief-b',
          token: `${t1!.transactionId.slice(0, 4)}…${t1!.transactionId.slice(-4)}`,
          fingerprint: expect.any(String) as unknown,
          action: 'held',
          other_run: 'lc-night-1',
          other_source: night1,
          other_line: '2',
          other_app_user_id: 'owner-a',
          original_transaction_id: shared,
        },
      ]);
      // the same command again: the held row stays held, looked up and posted never
      const again = await runMigration({ config: appleConfig(sb, prefix), logger: silentLogger(), sources: [night2], runId: 'lc-night-2', outDir: join(fx.dir, 'lc-2b') });
      expect(again.summary).toMatchObject({ rows_succeeded: 2, rows_conflict: 1, rows_held: 1, rows_pending: 0 });
      expect(again.exitCode).toBe(1);
      expect(sb.stats().appStoreServerApi.found).toBe(1);
      expect(sb.receiptPostCounts().filter((p) => p.app_user_id === 'thief-b')).toEqual([]);

      // run 3 with --on-conflict send: posted, counted as a conflict sent, and the purchase moves as RevenueCat moves it
      const night3 = await writeCsv(fx.dir, 'conflict-night-3.csv', HEADER, [txRow('sender-c', t2!.transactionId)]);
      const third = await runMigration({
        config: appleConfig(sb, prefix),
        logger: silentLogger(),
        sources: [night3],
        runId: 'lc-night-3',
        onConflict: 'send',
        outDir: join(fx.dir, 'lc-3'),
      });
      expect(third.summary).toMatchObject({ rows_succeeded: 1, rows_conflict: 1, rows_held: 0 });
      expect(third.exitCode).toBe(0);
      const posted = sb.receiptPostCounts().filter((p) => p.app_user_id === 'sender-c');
      expect(posted.map((p) => [p.posts, readSignedTransaction(p.fetch_token).originalTransactionId])).toEqual([[1, shared]]);
      expect(sb.transfers().slice(transfers)).toEqual([expect.objectContaining({ originalTransactionId: shared, to: 'sender-c' })]);
      expect(await readCsvFile(third.files.conflicts)).toEqual([
        expect.objectContaining({ app_user_id: 'sender-c', action: 'sent', other_run: 'lc-night-1', other_app_user_id: 'owner-a', original_transaction_id: shared }),
      ]);
    });
  });

  it("within a run: of two users' looked-up rows of one purchase, one is posted and the other held (after its lookup group's decision)", async () => {
    const [p0, p1, p2] = purchaseOf(5100, 2);
    const shared = p0!.originalTransactionId;
    await withSandbox({ appleTransactions: [p0!, p1!, p2!] }, async (sb) => {
      // twin-2 has two renewals of it (a lookup group: the older superseded, the newer checked); twin-1 the first
      const source = await writeCsv(fx.dir, 'twins.csv', HEADER, [
        txRow('twin-2', p1!.transactionId),
        txRow('twin-1', p0!.transactionId),
        ...Array.from({ length: 6 }, (_, i) => androidRow(720 + i)),
        txRow('twin-2', p2!.transactionId),
      ]);
      const result = await runMigration({
        config: appleConfig(sb, fx.newPrefix('twins')),
        logger: silentLogger(),
        sources: [source],
        runId: 'twins',
        outDir: join(fx.dir, 'twins'),
      });
      expect(result.summary).toMatchObject({
        status: 'complete',
        rows_read: 9,
        rows_succeeded: 7,
        rows_superseded: 1,
        rows_conflict: 1,
        rows_held: 1,
        rows_pending: 0,
      });
      expect(result.exitCode).toBe(1);
      expect(sb.stats().appStoreServerApi.found).toBe(3);
      // one POST of the purchase, for one of the two users; nothing moved
      const posted = sb.receiptPostCounts().filter((p) => p.app_user_id.startsWith('twin-'));
      expect(posted).toHaveLength(1);
      expect(posted[0]!.posts).toBe(1);
      expect(sb.transfers()).toEqual([]);
      const winner = posted[0]!.app_user_id;
      const lines: Record<string, string> = { 'twin-1': '3', 'twin-2': '10' };
      const loser = winner === 'twin-1' ? 'twin-2' : 'twin-1';
      expect(await readCsvFile(result.files.conflicts)).toEqual([
        expect.objectContaining({
          line: lines[loser],
          app_user_id: loser,
          action: 'held',
          other_run: 'twins',
          other_source: source,
          other_line: lines[winner],
          other_app_user_id: winner,
          original_transaction_id: shared,
        }),
      ]);
      expect(await readCsvFile(join(fx.dir, 'twins', 'superseded.csv'))).toEqual([expect.objectContaining({ line: '2', app_user_id: 'twin-2', superseded_by_line: '10' })]);
    });
  });

  it("a user's rows far apart do not hold the ingest at its high-water mark: rows waiting for their group are not counted", async () => {
    const now = Date.now();
    const users = 6;
    // each user's two renewals: the older ones all first, the newer ones after 30 other rows
    const renewal = (u: number, r: number): AppleTransactionRecord => ({
      transactionId: String(2_000_000_000_004_000 + u * 10 + r),
      originalTransactionId: String(2_000_000_000_004_000 + u * 10),
      productId: 'sandbox.monthly',
      bundleId: BUNDLE,
      environment: 'Production',
      purchaseDate: now - DAY - (1 - r) * 30 * DAY,
      expiresDate: now + 29 * DAY - (1 - r) * 30 * DAY,
      type: 'Auto-Renewable Subscription',
    });
    const known = Array.from({ length: users }, (_, u) => [renewal(u, 0), renewal(u, 1)]).flat();
    await withSandbox({ appleTransactions: known }, async (sb) => {
      const rows = [
        ...Array.from({ length: users }, (_, u) => txRow(`far-${u}`, renewal(u, 0).transactionId)),
        ...Array.from({ length: 30 }, (_, i) => androidRow(600 + i)),
        ...Array.from({ length: users }, (_, u) => txRow(`far-${u}`, renewal(u, 1).transactionId)),
      ];
      const source = await writeCsv(fx.dir, 'far.csv', HEADER, rows);
      // a mark below the rows that wait: counted, they would stop the reading for good
      const result = await runMigration({
        config: appleConfig(sb, fx.newPrefix('far'), { highWaterMark: 4, ingestChunkSize: 2 }),
        logger: silentLogger(),
        sources: [source],
        runId: 'far',
        outDir: join(fx.dir, 'far'),
      });
      expect(result.summary).toMatchObject({ status: 'complete', rows_read: 42, rows_succeeded: 36, rows_superseded: 6, rows_failed: 0 });
      expect(result.exitCode).toBe(0);
      const posted = sb.receiptPostCounts().filter((p) => p.app_user_id.startsWith('far-'));
      expect(posted.map((p) => readSignedTransaction(p.fetch_token).transactionId).sort()).toEqual(Array.from({ length: users }, (_, u) => renewal(u, 1).transactionId).sort());
    });
  }, 60_000);

  it('run refuses at the start without the key, naming the variables; plan counts the rows and says what they need', async () => {
    await withSandbox({}, async (sb) => {
      const source = await writeCsv(fx.dir, 'nokey.csv', HEADER, [androidRow(300), txRow('nokey-1', '2000000000000001')]);
      const config = testConfig(fx.newPrefix('nokey'), sb.url);
      const refused = await runMigration({ config, logger: silentLogger(), sources: [source], runId: 'nokey', outDir: join(fx.dir, 'nokey') }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ConfigError);
      expect((refused as Error).message).toMatch(/APPLE_ISSUER_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY \(or APPLE_PRIVATE_KEY_FILE\)/);
      expect((refused as Error).message).toContain('line 3');
      expect(sb.stats().requests).toBe(0);

      const plan = await planMigration({ config, logger: silentLogger(), sources: [source], outDir: join(fx.dir, 'nokey-plan') });
      expect(plan.plan).toMatchObject({ rows_to_send: 2, apple_lookups: 1 });
      expect(plan.plan.apple_lookups_need).toContain('APPLE_KEY_ID');
      expect(plan.plan.apple_lookups_need).toContain('--bundle-id');
      // Rows that name their app in a bundle_id cell need no --bundle-id: only the key is asked for.
      const named = await writeCsv(fx.dir, 'named.csv', [...HEADER, 'bundle_id'], [[...txRow('named-1', '2000000000000002'), BUNDLE]]);
      const namedPlan = await planMigration({ config, logger: silentLogger(), sources: [named], outDir: join(fx.dir, 'named-plan') });
      expect(namedPlan.plan).toMatchObject({ apple_lookups: 1 });
      expect(namedPlan.plan.apple_lookups_need).toContain('APPLE_KEY_ID');
      expect(namedPlan.plan.apple_lookups_need).not.toContain('--bundle-id');
    });
  });
});
