// Which of the tool's Redis operations work on a real Redis Cluster, and which fail with CROSSSLOT because
// they touch keys of several slots in one script, transaction or BullMQ call. Each operation runs through the
// project's own classes, on a cluster connection, twice: with a plain prefix (what a user gives) and with a
// prefix that is one hash tag. KNOWN_CROSSSLOT lists the operations known to fail: it is empty now (the ledger's
// scripts each touch one shard's slot, BullMQ's prefix becomes one hash tag on a cluster: redis/keys.ts
// bullmqPrefix). The test fails both when an operation breaks and when one listed is fixed but still listed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { connectRedis, type RedisClient } from '../src/redis/connection.js';
import { scriptFiles } from '../src/redis/scripts.js';
import { RunLedger, type AdmitRow } from '../src/ledger/runLedger.js';
import { PlanLedger, sweepStalePlans } from '../src/ledger/planLedger.js';
import { UserLock } from '../src/workers/userLock.js';
import { Pacer } from '../src/workers/pacer.js';
import { RateController } from '../src/workers/rateController.js';
import { readRateState } from '../src/workers/rate/sharedRate.js';
import { FatalStop } from '../src/queue/fatalStop.js';
import { holdJobLock } from '../src/queue/jobLock.js';
import { reconcileRun } from '../src/queue/reconcile.js';
import { InFlightRows } from '../src/workers/inFlightRows.js';
import { enqueueRows, openReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRunsQueue, upsertSchedule, listSchedules } from '../src/schedule/scheduler.js';
import { RedisKeys } from '../src/redis/keys.js';
import { silentLogger } from '../src/logger.js';
import type { ReceiptJobData } from '../src/types.js';
import { outcomeFor } from './support/ledgerOutcomes.js';
import { startRedisCluster, type RedisClusterHandle } from './support/redisCluster.js';

/** Operations that fail with CROSSSLOT on a cluster when the prefix is a plain name: none. */
const KNOWN_CROSSSLOT: string[] = [];

let cluster: RedisClusterHandle;
let redis: RedisClient;

beforeAll(async () => {
  cluster = await startRedisCluster();
  redis = await connectRedis({ redisUrl: 'redis://127.0.0.1:6379', redisClusterNodes: cluster.seeds }, 10_000);
}, 180_000);

afterAll(async () => {
  redis?.disconnect();
  await cluster?.stop();
}, 60_000);

type Result = 'ok' | 'CROSSSLOT' | `error: ${string}`;

const row = (line: number, token: string): AdmitRow => ({ src: 'a.csv', line, platform: 'android', body: { app_user_id: 'u1', fetch_token: token, product_id: 'gold' } });

function job(line: number, token: string): ReceiptJobData {
  const r = row(line, token);
  return { run: 'inv', fp: `fp-${line}`, src: r.src, line, platform: r.platform, body: r.body, input: { app_user_id: 'u1', token } };
}

/** Runs every operation of the tool that touches Redis, with `prefix`, and says how each one went. */
async function inventory(prefix: string): Promise<Map<string, Result>> {
  const results = new Map<string, Result>();
  const attempt = async (name: string, op: () => Promise<unknown>): Promise<void> => {
    try {
      await op();
      results.set(name, 'ok');
    } catch (err) {
      const message = (err as Error).message;
      // Redis answers CROSSSLOT to a script or command; ioredis refuses a pipeline or MULTI across slots itself.
      results.set(name, /CROSSSLOT|should belong to the same slot|same slots allocation group/.test(message) ? 'CROSSSLOT' : `error: ${message.slice(0, 160)}`);
    }
  };
  const ledger = new RunLedger(redis, prefix, 'inv');
  const rows = [row(2, 'token-ok'), row(3, 'token-fail'), row(4, 'token-3')];
  let fps: string[] = [];
  await attempt('ledger.beginIngest: MULTI meta, ZADD runs, script runNumber, script sourceId', () => ledger.beginIngest(['a.csv']));
  await attempt('ledger.admit: script admit (run shard and index shard)', async () => {
    const admissions = await ledger.admit(rows);
    fps = admissions.map((a) => ('fp' in a ? a.fp : ''));
  });
  await attempt('ledger.reject: script recordOnce (rejected, counters)', () => ledger.reject({ src: 'a.csv', line: 5, reason: 'bad' }));
  await attempt('ledger.duplicate: script recordOnce (duplicates, counters)', () => ledger.duplicate({ src: 'a.csv', line: 6, first: 'a.csv#2', fp: fps[0] ?? '' }));
  await attempt('ledger.setProgress, endIngest, markFinished: HSET meta', async () => {
    await ledger.setProgress('a.csv', 6);
    await ledger.endIngest();
    await ledger.markFinished();
  });
  await attempt('ledger.countRequest: pipeline counters, timeline, latency (one shard)', () =>
    ledger.countRequest({ status: '503', durationMs: 12, rateLimited: false, fp: fps[0] ?? '' }),
  );
  await attempt('ledger.recordRate: HSET timeline', () => ledger.recordRate(12.5));
  await attempt('ledger.recordAnswer: script dictCode, script recordAnswer (run shard and index shard), script recordPurchases (purchase index shards)', async () => {
    const [ok, fail] = rows as [AdmitRow, AdmitRow];
    await ledger.recordAnswer(outcomeFor(ok, fps[0] ?? '', 'succeeded'), {
      sent: { platform: ok.platform, body: ok.body },
      request: { status: '200', durationMs: 5, rateLimited: false },
      purchases: [
        { environment: 'production', originalTransactionId: '1000000692878476' },
        { environment: 'production', originalTransactionId: '2000000000000017' },
      ],
    });
    await ledger.recordAnswer(outcomeFor(fail, fps[1] ?? '', 'failed'), { request: { status: '400', durationMs: 5, rateLimited: false } });
    await ledger.recordOutcome(outcomeFor(fail, fps[1] ?? '', 'failed'), { onlyIfAbsent: true });
  });
  await attempt('ledger.supersede (a row the survey superseded): script recordSuperseded (one shard), then listed', async () => {
    await ledger.supersede([{ src: 'a.csv', line: 5, app_user_id: 'u1', by: { src: 'a.csv', line: 3 } }]);
    for await (const _ of ledger.superseded()) void _;
  });
  await attempt('ledger.finished, outcome: script findRecords', async () => {
    await ledger.finished(fps.filter((f) => f !== ''));
    await ledger.outcome(fps[0] ?? '');
  });
  await attempt('ledger.reopen: script reopenFailed', async () => {
    const records: { fp: string; stored: string }[] = [];
    for await (const r of ledger.failedRecords()) records.push({ fp: r.outcome.fp, stored: r.stored });
    // When recordAnswer could not write, the script still runs (and its keys are still checked) on a stand-in.
    await ledger.reopen(records.length > 0 ? records : [{ fp: fps[1] ?? '', stored: 'c3RhbmQtaW4=' }]);
  });
  await attempt('ledger.saveVerify: MULTI verify mismatches + meta', () =>
    ledger.saveVerify({ at: new Date().toISOString(), api: 'v2', checked: 1, users: 1, matched: 1, mismatched: 0 }, []),
  );
  await attempt('ledger reads: state, rows, outcomes, history, errors, timeline, latency, conflicts, rejections, duplicates', async () => {
    await ledger.state();
    for await (const _ of ledger.rows()) void _;
    for await (const _ of ledger.outcomes()) void _;
    for await (const _ of ledger.history()) void _;
    for await (const _ of ledger.conflicts()) void _;
    for await (const _ of ledger.alreadyMigrated()) void _;
    for await (const _ of ledger.rejections()) void _;
    for await (const _ of ledger.duplicates()) void _;
    for await (const _ of ledger.verifyMismatches()) void _;
    await ledger.recentErrors();
    await ledger.timeline();
    await ledger.latencyBuckets();
  });
  await attempt('lookup groups: script lookupGroup (one key), the waiting set; script supersedeQueued (one shard)', async () => {
    const groups = ledger.lookupGroups;
    await groups.open('u1', 2);
    await groups.offer('a.csv#2', { fp: fps[0] ?? '', app_user_id: 'u1', jws: 'a.b.c' });
    await groups.absent('u1', 2, 'a.csv#3');
    await groups.storedResult('u1', 'a.csv#2');
    await groups.complete('u1');
    await groups.wait('inv.fp-2');
    await groups.waiting();
    await groups.leave('inv.fp-2');
    await groups.decided('u1', 'a.csv#2');
    await ledger.supersedeAdmitted(fps[2] ?? '', { src: 'a.csv', line: 4, app_user_id: 'u1', by: { src: 'a.csv', line: 3 } });
  });
  await attempt('looked-up conflicts: script claimPurchase (purchase shard: index and run claims), script conflictQueued (row shard), HSET conflict tokens', async () => {
    const purchases = [{ environment: 'production', originalTransactionId: '1000000692878476' }];
    const row = (fp: string, user: string) => ({ fp, src: 'a.csv', line: 4, app_user_id: user });
    await ledger.checkLookedUpPurchases(row(fps[2] ?? '', 'u1'), purchases);
    const check = await ledger.checkLookedUpPurchases(row(fps[2] ?? '', 'u2'), purchases);
    if (check.kind !== 'conflict') throw new Error('no conflict found');
    await ledger.recordLookedUpConflict(row(fps[2] ?? '', 'u2'), check, { hold: true, token: '2000000000000017' });
    await ledger.onConflict();
  });
  await attempt('ledger of a later run: script admit against the cross-run index', () => new RunLedger(redis, prefix, 'inv2').admit(rows));
  await attempt('plan ledger: admit, then DEL its keys shard by shard; sweep of stale plans', async () => {
    const plan = new PlanLedger(redis, prefix, `plan-${randomBytes(3).toString('hex')}`);
    await plan.beginIngest(['a.csv']);
    await plan.admit(rows);
    await plan.drop();
    await sweepStalePlans(redis, prefix);
  });
  await attempt("userLock: script takeUserLock + script releaseUserLock (one key), a dead attempt's lock taken over", async () => {
    const lock = new UserLock(redis, prefix, 1000);
    const dead = await lock.acquire('user-1', { owner: 'run.row-1' });
    const token = await lock.acquire('user-1', { owner: 'run.row-1' });
    if (!dead || !token || token === dead) throw new Error('lock not taken over');
    await lock.release('user-1', token);
  });
  await attempt('pacer.take: script pace (one key)', () => new Pacer(redis, prefix, 1000).take());
  await attempt('userLock with the pacer: script lockPace where the lock and the pacer share a slot, else script takeUserLock then script pace', async () => {
    const lock = new UserLock(redis, prefix, 1000);
    const token = await lock.acquire('user-2', { pacer: new Pacer(redis, prefix, 1000) });
    if (!token) throw new Error('lock not taken');
    await lock.release('user-2', token);
  });
  await attempt('rateController: script rateUpdate, script pace (one key each); readRateState', async () => {
    const rate = new RateController(redis, prefix, { configuredRate: 100, logger: silentLogger() });
    await rate.start();
    await rate.refresh();
    await rate.rateLimited();
    await rate.stop();
    await readRateState(redis, new RedisKeys(prefix));
  });

  const queue = openReceiptsQueue(redis, prefix);
  try {
    await attempt('bullmq receipts queue: addBulk (enqueueRows), job counts, a job lock held (jobLock)', async () => {
      await enqueueRows(queue, [job(2, 'token-ok'), job(3, 'token-fail')], 3);
      await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
      await holdJobLock(redis, queue, 'inv.fp-2', 'no-such-token', 1000);
    });
    await attempt('in-flight rows: heartbeat SET, script inFlightBegin, script inFlightEnd (one key each)', async () => {
      const flight = new InFlightRows(redis, prefix, { lockDurationMs: 30_000, poisonStarts: 5 });
      await flight.start(() => undefined);
      await flight.begin('inv.fp-2');
      await flight.end('inv.fp-2');
      await flight.stop(false);
    });
    await attempt('reconcile pass: the ledger read shard by shard, then one pipeline of EXISTS on job keys, then findRecords', async () => {
      const rowsAt = (places: readonly unknown[]) => Promise.resolve(places.map(() => ({ ok: false as const, reason: 'not read here' })));
      await reconcileRun({ ledger: new RunLedger(redis, prefix, 'inv'), queue, redis, rowsAt, maxAttempts: 3 });
    });
    await attempt('fatal.trip: SET fatal, then BullMQ pause/resume', async () => {
      const fatal = new FatalStop(redis, prefix, queue);
      await fatal.trip({ message: 'revoked', status: 401, run: 'inv', at: new Date().toISOString() });
      await fatal.clear();
    });
    await attempt('key stops: stop, list, refresh, unpark, parked counts, lift', async () => {
      const stops = new FatalStop(redis, prefix, queue).keys;
      const stop = {
        platform: 'android',
        fingerprint: 'abc123',
        key: 'goog_ab…',
        variable: 'REVENUECAT_API_KEY_ANDROID',
        cause: 'key',
        message: 'revoked',
        status: 401,
        run: 'inv',
        at: new Date().toISOString(),
      } as const;
      await stops.stop([stop]);
      await stops.list();
      await stops.refresh();
      await stops.unpark(['android']);
      await stops.parkedCount('inv');
      await stops.parkedByPlatform('inv');
      await stops.lift('android', 'abc123');
    });
    await queue.obliterate({ force: true }).catch(() => undefined);
  } finally {
    await queue.close();
  }
  const runs = openRunsQueue(redis, prefix);
  runs.on('error', () => undefined);
  try {
    await attempt('bullmq runs queue: upsertJobScheduler (schedules)', async () => {
      await upsertSchedule(runs, { id: 'nightly', cron: '0 3 * * *', sources: ['s3://b/{date}/'] });
      await listSchedules(runs);
    });
    await runs.obliterate({ force: true }).catch(() => undefined);
  } finally {
    await runs.close();
  }
  return results;
}

function table(results: Map<string, Result>): string {
  return [...results].map(([op, r]) => `  ${r === 'ok' ? 'ok       ' : r === 'CROSSSLOT' ? 'CROSSSLOT' : 'ERROR    '}  ${op}${r.startsWith('error') ? ` (${r})` : ''}`).join('\n');
}

describe('the tool’s Redis operations on a Redis Cluster', () => {
  it('with a plain prefix: no operation fails with CROSSSLOT (or any other way)', async () => {
    const results = await inventory(`t-inv-${randomBytes(3).toString('hex')}`);
    console.log(`operations on a 3-master cluster, plain prefix:\n${table(results)}`);
    // every Lua script of the project is exercised by some operation above
    for (const name of scriptFiles().keys())
      expect(
        [...results.keys()].some((op) => new RegExp(`script ${name}\\b`).test(op)),
        name,
      ).toBe(true);
    expect([...results].filter(([, r]) => r.startsWith('error'))).toEqual([]);
    expect(
      [...results]
        .filter(([, r]) => r === 'CROSSSLOT')
        .map(([op]) => op)
        .sort(),
    ).toEqual(KNOWN_CROSSSLOT);
  });

  it('with a prefix that is one hash tag: every operation works (the queue in one slot, the ledger spread as with a plain prefix)', async () => {
    const results = await inventory(`{t-inv-${randomBytes(3).toString('hex')}}`);
    console.log(`operations on a 3-master cluster, prefix {…}:\n${table(results)}`);
    expect([...results].filter(([, r]) => r !== 'ok')).toEqual([]);
  });
});
