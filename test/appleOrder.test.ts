// App Store rows ordered like Google's (issue 15): an App Store row whose receipt or signed transaction holds an
// active subscription is queued with the priority a Google row of the same expiry gets, so the two stores'
// rows interleave by expiry; App Store rows with nothing active, or unread, keep file order behind them; a run
// with neither an expiry column nor an active subscription gives no priority at all. Generated receipts, real
// Redis and BullMQ; nothing is sent.
import { Queue, Worker, type Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { ingestSources } from '../src/commands/ingest.js';
import { LOWEST_PRIORITY } from '../src/ingest/tokenExpiry.js';
import { silentLogger } from '../src/logger.js';
import { RECEIPTS_QUEUE } from '../src/redis/keys.js';
import type { ReceiptJobData } from '../src/types.js';
import { appleSigner, type AppleSigner, type ReceiptPurchaseSpec } from './support/appleReceipts.js';
import { pipelineFixture } from './support/fixture.js';
import { testConfig, token, writeCsv } from './support/harness.js';
import { redisUrl } from './support/redis.js';

const DAY = 86_400_000;
const BUNDLE = 'com.example.app';
type ReceiptJob = Job<ReceiptJobData, void, string>;

describe('App Store rows ordered by their subscription’s expiry', () => {
  const fx = pipelineFixture('apple-order');
  const logger = silentLogger();
  const connection = (): { url: string; maxRetriesPerRequest: null } => ({ url: redisUrl(), maxRetriesPerRequest: null });
  // The ingest reads with the real clock: expiries days away from it, in whole seconds as receipts hold them.
  const now = Date.now();
  const at = (days: number): number => Math.floor((now + days * DAY) / 1000) * 1000;
  let signer: AppleSigner | undefined;
  const sign = async (): Promise<AppleSigner> => (signer ??= await appleSigner());

  /** A subscription's three monthly transactions (ids from `base`), the last one running until `expiresMs`. */
  const subscription = (base: number, expiresMs: number): ReceiptPurchaseSpec[] =>
    [0, 1, 2].map((i) => ({
      productId: `pro_monthly_${base}`,
      transactionId: String(base + i),
      originalTransactionId: String(base),
      purchaseMs: expiresMs - (3 - i) * 30 * DAY,
      expiresMs: expiresMs - (2 - i) * 30 * DAY,
    }));
  const receipt = async (purchases: ReceiptPurchaseSpec[]): Promise<string> =>
    (await sign()).receipt({ environment: 'Production', bundleId: BUNDLE, creationMs: now - DAY, purchases });
  async function signedTransaction(id: number, expiresMs: number): Promise<string> {
    return (await sign()).signedTransaction({
      environment: 'Production',
      bundleId: BUNDLE,
      signedMs: now - DAY,
      transactionId: String(id + 1),
      originalTransactionId: String(id),
      productId: 'pro_monthly',
      purchaseMs: expiresMs - 30 * DAY,
      expiresMs,
      type: 'Auto-Renewable Subscription',
    });
  }
  const consumables = (id: number): Promise<string> => receipt([{ productId: 'coins_100', transactionId: String(id), purchaseMs: now - 2 * DAY }]);

  async function jobsOf(prefix: string, states: ('prioritized' | 'waiting')[]): Promise<{ waiting: number; jobs: ReceiptJob[]; queue: Queue<ReceiptJobData, void, string> }> {
    const queue = new Queue<ReceiptJobData, void, string>(RECEIPTS_QUEUE, { connection: connection(), prefix });
    return { queue, waiting: await queue.getWaitingCount(), jobs: await queue.getJobs(states, 0, -1, true) };
  }

  /** The order one worker, one job at a time, takes every job in (nothing is sent). */
  async function takeOrder(prefix: string, count: number, where: (job: ReceiptJob) => string): Promise<string[]> {
    const taken: string[] = [];
    let worker: Worker<ReceiptJobData, void, string> | undefined;
    await new Promise<void>((resolve, reject) => {
      worker = new Worker<ReceiptJobData, void, string>(
        RECEIPTS_QUEUE,
        (job) => {
          taken.push(where(job));
          if (taken.length === count) resolve();
          return Promise.resolve();
        },
        { connection: connection(), prefix, concurrency: 1 },
      );
      worker.on('error', reject);
    });
    await worker?.close();
    return taken;
  }

  it('interleaves App Store and Google rows by expiry; App Store rows with nothing active keep file order behind them', async () => {
    const prefix = fx.newPrefix('order-mixed');
    const source = await writeCsv(
      fx.dir,
      'mixed.csv',
      ['platform', 'app_user_id', 'product_id', 'fetch_token', 'expires_at'],
      [
        ['ios', 'apple-20', 'pro_monthly', await receipt(subscription(10_000, at(20))), ''], // line 2: active until day 20
        ['android', 'google-10', 'pro_monthly', token(3), new Date(at(10)).toISOString()], // line 3: expires day 10
        ['ios', 'apple-lapsed', 'pro_monthly', await receipt(subscription(11_000, at(-5))), ''], // line 4: lapsed 5 days ago: behind
        ['ios', 'apple-sk2-5', 'pro_monthly', await signedTransaction(12_000, at(5)), ''], // line 5: signed transaction, day 5
        ['ios', 'apple-unread', 'pro_monthly', token(6), ''], // line 6: unread: sent as it is, behind
        ['android', 'google-20', 'pro_monthly', token(7), String(at(20))], // line 7: expires day 20, like line 2
        ['android', 'google-cut30', 'pro_monthly', token(8), new Date(at(-30)).toISOString()], // line 8: expired, its cut-off in 30 days comes first
        ['ios', 'apple-coins', 'pro_monthly', await consumables(13_000), ''], // line 9: no subscription: behind
        ['ios', 'apple-2-and-40', 'pro_monthly', await receipt([...subscription(14_000, at(40)), ...subscription(15_000, at(2))]), ''], // line 10: day 2 and day 40: day 2 counts
      ],
    );
    const { result } = await ingestSources({ config: testConfig(prefix, fx.sandbox.url), logger, sources: [source], runId: 'mixed', progressEveryMs: 0 });
    expect(result).toMatchObject({ rowsRead: 9, queued: 9, rejected: 0, superseded: 0 });
    expect(result.receipts).toMatchObject({ read: 5, unread: 1 });

    const { queue, waiting, jobs } = await jobsOf(prefix, ['prioritized', 'waiting']);
    try {
      expect(waiting).toBe(0); // nothing is taken ahead of the order at priority 0
      const byLine = new Map(jobs.map((j) => [j.data.line, j]));
      const priority = (line: number): number | undefined => byLine.get(line)?.opts.priority;
      for (const job of jobs) expect(job.opts.priority).toBe(job.data.priority);
      // one scale: an App Store subscription and a Google token expiring the same second share a priority
      expect(priority(2)).toBe(priority(7));
      for (const line of [4, 6, 9]) expect(priority(line)).toBe(LOWEST_PRIORITY);
      const expected = ['8', '10', '5', '3', '2', '7', '4', '6', '9'];
      expect(jobs.map((j) => String(j.data.line))).toEqual(expected);
      expect(await takeOrder(prefix, 9, (j) => String(j.data.line))).toEqual(expected);
    } finally {
      await queue.close();
    }
  });

  it('orders a run of App Store rows alone, with no expiry column, from its first row', async () => {
    const prefix = fx.newPrefix('order-apple');
    const source = await writeCsv(
      fx.dir,
      'apple.csv',
      ['platform', 'app_user_id', 'product_id', 'fetch_token'],
      [
        ['ios', 'a-unread', 'pro_monthly', token(21)], // line 2: read before any active row: still behind them, not ahead
        ['ios', 'a-lapsed', 'pro_monthly', await receipt(subscription(20_000, at(-1)))], // line 3
        ['ios', 'a-30', 'pro_monthly', await receipt(subscription(21_000, at(30)))], // line 4
        ['macos', 'a-3', 'pro_monthly', await signedTransaction(22_000, at(3))], // line 5
        ['ios', 'a-9', 'pro_monthly', await receipt(subscription(23_000, at(9)))], // line 6
      ],
    );
    const { result } = await ingestSources({ config: testConfig(prefix, fx.sandbox.url), logger, sources: [source], runId: 'apple', progressEveryMs: 0 });
    expect(result).toMatchObject({ rowsRead: 5, queued: 5 });
    const { queue, waiting, jobs } = await jobsOf(prefix, ['prioritized', 'waiting']);
    try {
      expect(waiting).toBe(0);
      expect(jobs.map((j) => j.data.body.app_user_id)).toEqual(['a-3', 'a-9', 'a-30', 'a-unread', 'a-lapsed']);
    } finally {
      await queue.close();
    }
  });

  it('gives no priority at all when no App Store row holds an active subscription', async () => {
    const prefix = fx.newPrefix('order-none');
    const source = await writeCsv(
      fx.dir,
      'inactive.csv',
      ['platform', 'app_user_id', 'product_id', 'fetch_token'],
      [
        ['ios', 'n-lapsed', 'pro_monthly', await receipt(subscription(30_000, at(-3)))],
        ['ios', 'n-unread', 'pro_monthly', token(31)],
        ['ios', 'n-coins', 'pro_monthly', await consumables(31_000)],
        ['android', 'n-google', 'pro_monthly', token(33)],
      ],
    );
    const { result } = await ingestSources({ config: testConfig(prefix, fx.sandbox.url), logger, sources: [source], runId: 'none', progressEveryMs: 0 });
    expect(result).toMatchObject({ rowsRead: 4, queued: 4 });
    const { queue, waiting, jobs } = await jobsOf(prefix, ['prioritized', 'waiting']);
    try {
      expect(await queue.getPrioritizedCount()).toBe(0);
      expect(waiting).toBe(4);
      for (const job of jobs) {
        expect(job.data.priority).toBeUndefined();
        expect(job.opts.priority ?? 0).toBe(0);
      }
    } finally {
      await queue.close();
    }
  });
});
