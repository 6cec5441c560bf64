// Lookup groups against a real Redis (issue 17: one purchase, one POST): the group script's steps (made by the
// ingest, results kept, absent and failed rows, deletion once every row decided, never made again by a worker),
// a queued row superseded in the ledger, and a row's steps in the worker run again after a crash at each point.
import { DelayedError, type Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RunLedger } from '../src/ledger/runLedger.js';
import { LookupGroupSteps } from '../src/workers/lookupGroupWait.js';
import { jobIdOf, RedisKeys } from '../src/redis/keys.js';
import { groupUserKey } from '../src/ledger/lookupGroups.js';
import { silentLogger } from '../src/logger.js';
import type { ReceiptJobData } from '../src/types.js';
import { appleSigner, type AppleSigner } from './support/appleReceipts.js';
import { redisScope } from './support/redis.js';

const scope = redisScope();
let redis: Redis;
let signer: AppleSigner;
const DAY = 86_400_000;

beforeAll(async () => {
  redis = scope.connect();
  signer = await appleSigner();
});
afterAll(() => scope.close());

/** A renewal of subscription 10 bought `monthsAgo` months ago (signed now, as a lookup signs it). */
function renewal(id: string, monthsAgo: number): Promise<string> {
  const purchaseMs = Date.now() - monthsAgo * 30 * DAY;
  return signer.signedTransaction({
    environment: 'Production',
    bundleId: 'com.example.app',
    signedMs: Date.now(),
    transactionId: id,
    originalTransactionId: '10',
    productId: 'monthly',
    purchaseMs,
    expiresMs: purchaseMs + 30 * DAY,
  });
}

const result = (fp: string, jws: string, user = 'u1') => ({ fp, app_user_id: user, jws });

describe('lookup groups', () => {
  it('complete once every row has a result or is absent; deleted once every row decided; never made by a worker', async () => {
    const prefix = scope.prefix('lg');
    const ledger = new RunLedger(redis, prefix, 'r1');
    const groups = ledger.lookupGroups;
    const key = new RedisKeys(prefix).lookupGroup('r1', groupUserKey('u1'));
    // a worker's write where the ingest made no group: nothing written
    expect(await groups.offer('a.csv#2', result('fpA', 'jwsA'))).toEqual({ kind: 'none' });
    expect(await redis.exists(key)).toBe(0);

    await groups.open('u1', 3);
    await groups.open('u1', 3);
    expect(await groups.offer('a.csv#2', result('fpA', 'jwsA'))).toEqual({ kind: 'incomplete' });
    // the same write again (a re-run) counts once
    expect(await groups.offer('a.csv#2', result('fpA', 'jwsA'))).toEqual({ kind: 'incomplete' });
    expect(await groups.storedResult('u1', 'a.csv#2')).toEqual(result('fpA', 'jwsA'));
    // an absent mark or a failure never replaces a result
    await groups.failed('u1', 'a.csv#2');
    expect(await groups.storedResult('u1', 'a.csv#2')).toEqual(result('fpA', 'jwsA'));
    expect(await groups.offer('a.csv#3', result('fpB', 'jwsB'))).toEqual({ kind: 'incomplete' });
    expect(await groups.complete('u1')).toBe(false);
    const done = await groups.absent('u1', 3, 'a.csv#4');
    expect(done).toMatchObject({ kind: 'complete', completedNow: true });
    expect(done.kind === 'complete' && done.entries.map((e) => [e.place, e.value.kind]).sort()).toEqual([
      ['a.csv#2', 'result'],
      ['a.csv#3', 'result'],
      ['a.csv#4', 'absent'],
    ]);
    // asked again: complete, but not completed by this write
    expect(await groups.offer('a.csv#3', result('fpB', 'jwsB'))).toMatchObject({ kind: 'complete', completedNow: false });
    expect(await groups.complete('u1')).toBe(true);
    expect(await redis.ttl(key)).toBeGreaterThan(86_400);

    expect(await groups.decided('u1', 'a.csv#2')).toMatchObject({ kind: 'complete' });
    expect(await groups.decided('u1', 'a.csv#2')).toMatchObject({ kind: 'complete' });
    expect(await groups.decided('u1', 'a.csv#3')).toEqual({ kind: 'closed' });
    expect(await redis.exists(key)).toBe(0);
    // a late write of a worker (a re-run after the deletion) does not make it again
    expect(await groups.decided('u1', 'a.csv#3')).toEqual({ kind: 'none' });
    expect(await groups.offer('a.csv#2', result('fpA', 'jwsA'))).toEqual({ kind: 'none' });
    expect(await redis.exists(key)).toBe(0);

    // a group whose rows are all absent (all migrated before) leaves nothing behind
    await groups.absent('u2', 2, 'a.csv#7');
    expect(await groups.absent('u2', 2, 'a.csv#8')).toEqual({ kind: 'closed' });
    expect(await redis.exists(new RedisKeys(prefix).lookupGroup('r1', groupUserKey('u2')))).toBe(0);
  });

  it('a queued row superseded after its lookup: no longer pending, counted and listed once, finished for a recheck', async () => {
    const prefix = scope.prefix('lgsup');
    const ledger = new RunLedger(redis, prefix, 'r2');
    await ledger.beginIngest(['a.csv']);
    const rows = [2, 3].map((line) => ({ src: 'a.csv', line, platform: 'ios' as const, body: { app_user_id: 'u1', fetch_token: `200000000000000${line}` } }));
    const admissions = await ledger.admit(rows);
    const fps = admissions.map((a) => (a.kind === 'new' ? a.fp : ''));
    await ledger.endIngest();
    const row = { src: 'a.csv', line: 2, app_user_id: 'u1', by: { src: 'a.csv', line: 3 } };
    expect(await ledger.supersedeAdmitted(fps[0]!, row)).toBe(true);
    expect(await ledger.supersedeAdmitted(fps[0]!, row)).toBe(false);
    expect(await ledger.state()).toMatchObject({ rows_read: 2, rows_queued: 1, rows_superseded: 1, rows_pending: 1 });
    expect(await ledger.finished(fps)).toEqual([true, false]);
    const listed = [];
    for await (const s of ledger.superseded()) listed.push(s);
    // the ledger lists places only (superseded.csv reads the user again from the source)
    expect(listed).toEqual([{ src: 'a.csv', line: 2, by: { src: 'a.csv', line: 3 } }]);
    // read again by a resumed ingest: done, not queued again
    expect((await ledger.admit(rows)).map((a) => a.kind)).toEqual(['done', 'requeue']);
    const states = [];
    for await (const s of ledger.rows()) states.push(s.status);
    expect(states.sort()).toEqual(['queued', 'superseded']);
  });

  it("a grouped row's steps: waits, is woken by the last result, decides; each step made again after a crash changes nothing", async () => {
    const prefix = scope.prefix('lgsteps');
    const ledger = new RunLedger(redis, prefix, 'r3');
    await ledger.beginIngest(['a.csv']);
    const older = await renewal('11', 1);
    const newer = await renewal('12', 0);
    const rows = [2, 3].map((line) => ({ src: 'a.csv', line, platform: 'ios' as const, body: { app_user_id: 'u1', fetch_token: `20000000000001${line}` } }));
    const fps = (await ledger.admit(rows)).map((a) => (a.kind === 'new' ? a.fp : ''));
    await ledger.lookupGroups.open('u1', 2);

    const promoted: string[] = [];
    const delayed: string[] = [];
    const job = (i: number): Job<ReceiptJobData, void, string> => {
      const r = rows[i]!;
      const j = {
        id: jobIdOf('r3', fps[i]!),
        data: {
          run: 'r3',
          fp: fps[i]!,
          src: r.src,
          line: r.line,
          platform: r.platform,
          body: r.body,
          input: {},
          lookup: { transaction_id: r.body.fetch_token, group: 2 },
        } as ReceiptJobData,
        updateData(data: ReceiptJobData) {
          j.data = data;
          return Promise.resolve();
        },
        moveToDelayed() {
          delayed.push(j.id);
          return Promise.resolve();
        },
      };
      return j as unknown as Job<ReceiptJobData, void, string>;
    };
    const steps = new LookupGroupSteps({
      ledgerFor: () => ledger,
      logger: silentLogger(),
      queue: { getJob: (id: string) => Promise.resolve({ promote: () => Promise.resolve(void promoted.push(id)) }) as never },
    });
    const a = job(0);
    const b = job(1);
    const waiting = new RedisKeys(prefix).lookupWaiting;

    // the older row first: its group lacks the newer one, so it waits (delayed, in the waiting set, its result on the job)
    await expect(steps.verdict(a, 'tok', a.data.lookup!, older)).rejects.toBeInstanceOf(DelayedError);
    expect(delayed).toEqual([a.id]);
    expect(a.data.lookup).toMatchObject({ signed: older, waits: 1 });
    expect(await redis.sismember(waiting, a.id!)).toBe(1);
    // run again from the start (a crash after its wait): the group still has its result, no second lookup needed
    expect(await steps.start(a)).toEqual({ kind: 'go', signed: older });

    // the newer row completes the group: it wakes the older one and is posted, its decision kept on its job
    expect(await steps.verdict(b, 'tok', b.data.lookup!, newer)).toMatchObject({ kind: 'post', lookup: { signed: newer, decided: 'post' } });
    expect(promoted).toEqual([a.id]);
    expect(b.data.lookup?.decided).toBe('post');

    // the older row, woken: superseded by the newer one
    expect(await steps.verdict(a, 'tok', a.data.lookup!, older)).toEqual({ kind: 'superseded' });
    expect(await ledger.state()).toMatchObject({ rows_queued: 1, rows_superseded: 1 });
    const groupKey = new RedisKeys(prefix).lookupGroup('r3', groupUserKey('u1'));
    expect(await redis.exists(groupKey)).toBe(0);
    expect(await redis.scard(waiting)).toBe(0);

    // crashes after each decision: the superseded row finds itself finished, the posted one posts again without
    // its group; neither makes the group again nor counts anything twice
    expect(await steps.start(a)).toEqual({ kind: 'finished' });
    await steps.decidedBefore(b);
    expect(await redis.exists(groupKey)).toBe(0);
    expect(await ledger.state()).toMatchObject({ rows_queued: 1, rows_superseded: 1 });
    const listed = [];
    for await (const s of ledger.superseded()) listed.push(s);
    expect(listed).toEqual([{ src: 'a.csv', line: 2, by: { src: 'a.csv', line: 3 } }]);
  });

  it("a group member whose lookup failed for good does not hold the others; a row without the group's flag gives its result and posts", async () => {
    const prefix = scope.prefix('lgfail');
    const ledger = new RunLedger(redis, prefix, 'r4');
    const steps = new LookupGroupSteps({ ledgerFor: () => ledger, logger: silentLogger() });
    const older = await renewal('21', 1);
    const newer = await renewal('22', 0);
    const rows = [2, 3, 4].map((line) => ({ src: 'a.csv', line, platform: 'ios' as const, body: { app_user_id: 'u1', fetch_token: `1${line}` } }));
    const fps = (await ledger.admit(rows)).map((a) => (a.kind === 'new' ? a.fp : ''));
    await ledger.lookupGroups.open('u1', 3);
    const job = (line: number, group?: number): Job<ReceiptJobData, void, string> =>
      ({
        id: jobIdOf('r4', fps[line - 2]!),
        data: {
          run: 'r4',
          fp: fps[line - 2]!,
          src: 'a.csv',
          line,
          platform: 'ios',
          body: rows[line - 2]!.body,
          input: {},
          lookup: { transaction_id: `1${line}`, ...(group ? { group } : {}) },
        },
        updateData: () => Promise.resolve(),
        moveToDelayed: () => Promise.resolve(),
      }) as unknown as Job<ReceiptJobData, void, string>;
    await expect(steps.verdict(job(2, 3), undefined, { transaction_id: '12', group: 3 }, older)).rejects.toBeInstanceOf(DelayedError);
    await steps.failed(job(3, 3));
    // queued again without its flag (the reconcile pass): posted on its own, its result completes the group
    expect(await steps.verdict(job(4), undefined, { transaction_id: '14' }, newer)).toMatchObject({ kind: 'post' });
    // the waiting row decides from the full set: the row posted on its own is newer
    expect(await steps.verdict(job(2, 3), undefined, { transaction_id: '12', group: 3 }, older)).toEqual({ kind: 'superseded' });
    expect(await redis.exists(new RedisKeys(prefix).lookupGroup('r4', groupUserKey('u1')))).toBe(0);
  });
});
