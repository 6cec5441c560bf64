// Which of the tool's Redis operations work on a real Redis Cluster, and which fail with CROSSSLOT because
// they touch keys of several slots in one script, transaction or BullMQ call. Each operation runs through the
// project's own classes, on a cluster connection, twice: with a plain prefix (what a user gives) and with a
// prefix that is one hash tag (every key in one slot: the README's workaround, which keeps a whole run on one
// master). KNOWN_CROSSSLOT is today's list; the cluster work makes it shrink to nothing: update it as
// operations are fixed (the test fails both when an operation breaks and when one is fixed but still listed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { connectRedis, type RedisClient } from '../src/redis/connection.js';
import { scriptFiles } from '../src/redis/scripts.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { recordKey } from '../src/ledger/rowIdentity.js';
import { UserLock } from '../src/workers/userLock.js';
import { Pacer } from '../src/workers/pacer.js';
import { RateController } from '../src/workers/rateController.js';
import { FatalStop } from '../src/queue/fatalStop.js';
import { enqueueRows, openReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { openRunsQueue, upsertSchedule, listSchedules } from '../src/schedule/scheduler.js';
import { silentLogger } from '../src/logger.js';
import type { Outcome, ReceiptJobData } from '../src/types.js';
import { startRedisCluster, type RedisClusterHandle } from './support/redisCluster.js';

/** Operations that fail with CROSSSLOT on a cluster when the prefix is a plain name (today). */
const KNOWN_CROSSSLOT = [
  'ledger.beginIngest: MULTI meta + runs index',
  'ledger.sourceId: script sourceId (sources, meta)',
  'ledger.admit: script admit (seen, outcomes, meta, skipped, migrated)',
  'ledger.reject: script recordOnce (rejected, meta)',
  'ledger.duplicate: script recordOnce (duplicates, meta)',
  'ledger.recordOutcome: script recordOutcome (outcomes, meta, migrated, history, errors, timeline)',
  'ledger.reopen: script reopenFailed (outcomes, meta, history)',
  'ledger.saveVerify: MULTI verify mismatches + meta',
  'ledger.countRequest: pipeline meta, timeline, latency',
  'ledger.setProgress: script sourceId, then HSET meta',
  'bullmq receipts queue: addBulk (enqueueRows)',
  'bullmq runs queue: upsertJobScheduler (schedules)',
  'fatal.trip: SET fatal, then BullMQ pause/resume',
].sort();

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

function outcome(fp: string, status: Outcome['status']): Outcome {
  return {
    status,
    src: 'a.csv',
    line: 2,
    fp,
    platform: 'android',
    app_user_id: 'u1',
    token: 'tok…',
    attempts: 1,
    queued_at: new Date().toISOString(),
    finished_at: new Date().toISOString(),
    ...(status === 'failed' ? { reason: 'rc_7103', message: 'invalid', code: 7103, http_status: 400 } : {}),
  };
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
      results.set(name, /CROSSSLOT|should belong to the same slot/.test(message) ? 'CROSSSLOT' : `error: ${message.slice(0, 160)}`);
    }
  };
  const ledger = new RunLedger(redis, prefix, 'inv');
  const fpOk = recordKey('android', 'token-ok');
  const fpFail = recordKey('android', 'token-fail');
  await attempt('ledger.beginIngest: MULTI meta + runs index', () => ledger.beginIngest([]));
  await attempt('ledger.sourceId: script sourceId (sources, meta)', () => ledger.sourceId('a.csv'));
  await attempt('ledger.admit: script admit (seen, outcomes, meta, skipped, migrated)', () =>
    ledger.admit([
      { src: 'a.csv', line: 2, platform: 'android', body: { app_user_id: 'u1', fetch_token: 'token-ok' } },
      { src: 'a.csv', line: 3, platform: 'android', body: { app_user_id: 'u1', fetch_token: 'token-fail' } },
    ]),
  );
  await attempt('ledger.reject: script recordOnce (rejected, meta)', () => ledger.reject({ src: 'a.csv', line: 4, reason: 'bad' }));
  await attempt('ledger.duplicate: script recordOnce (duplicates, meta)', () => ledger.duplicate({ src: 'a.csv', line: 5, first: 'a.csv#2', fp: fpOk }));
  await attempt('ledger.setProgress: script sourceId, then HSET meta', () => ledger.setProgress('a.csv', 5));
  await attempt('ledger.countRequest: pipeline meta, timeline, latency', () => ledger.countRequest({ status: '200', durationMs: 12, rateLimited: false }));
  await attempt('ledger.recordOutcome: script recordOutcome (outcomes, meta, migrated, history, errors, timeline)', async () => {
    await ledger.recordOutcome(outcome(fpOk, 'succeeded'));
    await ledger.recordOutcome(outcome(fpFail, 'failed'));
  });
  await attempt('ledger.reopen: script reopenFailed (outcomes, meta, history)', async () => {
    const records: { fp: string; stored: string }[] = [];
    for await (const r of ledger.failedRecords()) records.push({ fp: r.outcome.fp, stored: r.stored });
    // When recordOutcome could not write, the script still runs (and its keys are still checked) on a stand-in.
    await ledger.reopen(records.length > 0 ? records : [{ fp: fpFail, stored: 'stand-in' }]);
  });
  await attempt('ledger.saveVerify: MULTI verify mismatches + meta', () =>
    ledger.saveVerify({ at: new Date().toISOString(), api: 'v2', checked: 1, users: 1, matched: 1, mismatched: 0 }, []),
  );
  await attempt('ledger reads: state, outcomes, history, errors, timeline (one key each)', async () => {
    await ledger.state();
    for await (const _ of ledger.outcomes()) void _;
    for await (const _ of ledger.history()) void _;
    await ledger.recentErrors();
    await ledger.timeline();
  });
  await attempt('userLock: SET NX + script releaseUserLock (one key)', async () => {
    const lock = new UserLock(redis, prefix, 1000);
    const token = await lock.acquire('user-1');
    if (!token) throw new Error('lock not taken');
    await lock.release('user-1', token);
  });
  await attempt('pacer.take: EVAL (one key)', () => new Pacer(redis, prefix, 1000).take());
  await attempt('rateController: EVAL start/refresh/rateLimited (one key)', async () => {
    const rate = new RateController(redis, prefix, { configuredRate: 100, logger: silentLogger() });
    await rate.start();
    await rate.refresh();
    await rate.rateLimited();
  });

  const queue = openReceiptsQueue(redis, prefix);
  try {
    await attempt('bullmq receipts queue: addBulk (enqueueRows)', () => enqueueRows(queue, [{ run: 'inv', fp: fpOk, src: 'a.csv', line: 2 } as unknown as ReceiptJobData], 3));
    await attempt('fatal.trip: SET fatal, then BullMQ pause/resume', async () => {
      const fatal = new FatalStop(redis, prefix, queue);
      await fatal.trip({ message: 'revoked', status: 401, run: 'inv', at: new Date().toISOString() });
      await fatal.clear();
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
  it('with a plain prefix: exactly the known operations fail with CROSSSLOT, none any other way', async () => {
    const results = await inventory(`t-inv-${randomBytes(3).toString('hex')}`);
    console.log(`operations on a 3-master cluster, plain prefix:\n${table(results)}`);
    // every Lua script of the project is exercised by some operation above
    for (const name of scriptFiles().keys()) expect([...results.keys()].some((op) => op.includes(`script ${name} `))).toBe(true);
    expect([...results].filter(([, r]) => r.startsWith('error'))).toEqual([]);
    expect(
      [...results]
        .filter(([, r]) => r === 'CROSSSLOT')
        .map(([op]) => op)
        .sort(),
    ).toEqual(KNOWN_CROSSSLOT);
  });

  it('with a prefix that is one hash tag: every operation works (one slot, so one master holds the run)', async () => {
    const results = await inventory(`{t-inv-${randomBytes(3).toString('hex')}}`);
    console.log(`operations on a 3-master cluster, prefix {…}:\n${table(results)}`);
    expect([...results].filter(([, r]) => r !== 'ok')).toEqual([]);
  });
});
