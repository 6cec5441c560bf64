// App Store rows through `run` against the sandbox (issue 15): the ingest surveys every receipt first, and a
// receipt that a newer one of the same user carries in full is not sent (outcome superseded, superseded.csv),
// whatever order the rows come in; an older receipt holding a purchase the newer one lacks is sent too.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMigration } from '../src/commands/run.js';
import { silentLogger } from '../src/logger.js';
import { appleSigner, type AppleSigner } from './support/appleReceipts.js';
import { pipelineFixture } from './support/fixture.js';
import { readCsvFile, testConfig, writeCsv } from './support/harness.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token'];
const BUNDLE = 'com.example.app';
const DAY = 86_400_000;
const T0 = Date.UTC(2025, 0, 1);
const SUB = 'pro_monthly';

describe('App Store rows: superseded receipts', () => {
  const fx = pipelineFixture('apple-ingest');
  const logger = silentLogger();
  let signer: AppleSigner | undefined;
  const sign = async (): Promise<AppleSigner> => (signer ??= await appleSigner());
  const posts = (user: string, fetchToken: string): number => fx.sandbox.receiptPostCount(user, fetchToken).posts;

  /** A user's receipt on day `day`, holding the subscription's renewals up to then (one a month). */
  async function subscriptionReceipt(day: number, renewals: number, extra: { productId: string; transactionId: string; purchaseMs: number }[] = []): Promise<string> {
    const purchases = Array.from({ length: renewals }, (_, i) => ({
      productId: SUB,
      transactionId: String(100_000 + i),
      originalTransactionId: '100000',
      purchaseMs: T0 + i * 30 * DAY,
      expiresMs: T0 + (i + 1) * 30 * DAY,
    }));
    return (await sign()).receipt({ environment: 'Production', bundleId: BUNDLE, creationMs: T0 + day * DAY, purchases: [...purchases, ...extra] });
  }

  it('sends only the newest of a user’s three receipts, in and out of time order', async () => {
    const oldest = await subscriptionReceipt(1, 1);
    const middle = await subscriptionReceipt(31, 2);
    const newest = await subscriptionReceipt(61, 3);
    // out of order: the newest is in the middle of the file
    const source = await writeCsv(fx.dir, 'three.csv', HEADER, [
      ['ios', 'ann', middle],
      ['ios', 'ann', newest],
      ['ios', 'ann', oldest],
    ]);
    const result = await runMigration({ config: testConfig(fx.prefix, fx.sandbox.url), logger, sources: [source], runId: 'sup-three', outDir: join(fx.dir, 'three') });
    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({ status: 'complete', rows_read: 3, rows_queued: 1, rows_succeeded: 1, rows_superseded: 2, rows_failed: 0 });
    expect(posts('ann', newest)).toBe(1);
    expect(posts('ann', middle)).toBe(0);
    expect(posts('ann', oldest)).toBe(0);
    expect(
      fx.sandbox
        .receiptPostCounts()
        .filter((c) => c.app_user_id === 'ann')
        .reduce((n, c) => n + c.posts, 0),
    ).toBe(1);
    const listed = await readCsvFile(result.files.superseded);
    expect(listed).toEqual([
      { source, line: '2', app_user_id: 'ann', superseded_by_source: source, superseded_by_line: '3' },
      { source, line: '4', app_user_id: 'ann', superseded_by_source: source, superseded_by_line: '3' },
    ]);
    const summary = JSON.parse(await readFile(result.files.summary, 'utf8')) as Record<string, unknown>;
    expect(summary.rows_superseded).toBe(2);

    // a resumed or repeated ingest of the run decides the same: nothing more is sent or counted
    const again = await runMigration({ config: testConfig(fx.prefix, fx.sandbox.url), logger, sources: [source], runId: 'sup-three', outDir: join(fx.dir, 'three-again') });
    expect(again.summary).toMatchObject({ rows_read: 3, rows_succeeded: 1, rows_superseded: 2 });
    expect(posts('ann', newest)).toBe(1);
  });

  it('sends an older receipt that holds a consumable the newer one lacks', async () => {
    const coins = { productId: 'coins_100', transactionId: '200001', purchaseMs: T0 + 2 * DAY };
    const older = await subscriptionReceipt(3, 1, [coins]);
    const newer = await subscriptionReceipt(40, 2);
    const source = await writeCsv(fx.dir, 'consumable.csv', HEADER, [
      ['ios', 'ben', newer],
      ['ios', 'ben', older],
    ]);
    const result = await runMigration({ config: testConfig(fx.prefix, fx.sandbox.url), logger, sources: [source], runId: 'sup-consumable', outDir: join(fx.dir, 'consumable') });
    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({ rows_read: 2, rows_succeeded: 2, rows_superseded: 0 });
    expect(posts('ben', older)).toBe(1);
    expect(posts('ben', newer)).toBe(1);
    expect(await readCsvFile(result.files.superseded)).toEqual([]);
  });

  it('sends the newest of a user’s StoreKit 2 renewals of one subscription', async () => {
    const s = await sign();
    const renewal = (i: number): Promise<string> =>
      s.signedTransaction({
        environment: 'Production',
        bundleId: BUNDLE,
        signedMs: T0 + i * 30 * DAY + 1000,
        transactionId: String(300_000 + i),
        originalTransactionId: '300000',
        productId: SUB,
        purchaseMs: T0 + i * 30 * DAY,
        expiresMs: T0 + (i + 1) * 30 * DAY,
        type: 'Auto-Renewable Subscription',
      });
    const [r0, r1, r2] = [await renewal(0), await renewal(1), await renewal(2)];
    const source = await writeCsv(fx.dir, 'sk2.csv', HEADER, [
      ['ios', 'cat', r2],
      ['ios', 'cat', r0],
      ['ios', 'cat', r1],
    ]);
    const result = await runMigration({ config: testConfig(fx.prefix, fx.sandbox.url), logger, sources: [source], runId: 'sup-sk2', outDir: join(fx.dir, 'sk2') });
    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({ rows_read: 3, rows_succeeded: 1, rows_superseded: 2 });
    expect(posts('cat', r2)).toBe(1);
    expect(posts('cat', r0) + posts('cat', r1)).toBe(0);
    expect((await readCsvFile(result.files.superseded)).map((r) => [r.line, r.superseded_by_line])).toEqual([
      ['3', '2'],
      ['4', '2'],
    ]);
  });
});
