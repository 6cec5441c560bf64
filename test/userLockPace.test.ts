// The hot path's Redis calls (src/workers/userLock.ts, src/workers/pacer.ts takeHolding, lockPace-2.lua,
// src/workers/processor.ts): a row's user lock and its pacer slot are taken in one call, with the pacer's
// semantics kept (no slot for a busy user, a full schedule gives the lock back, a 429's hold re-checked); and a
// processed row costs three calls of its own: the lock with the slot, then the lock's release sent together with
// the row's answer.
import { afterAll, describe, expect, it } from 'vitest';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { createHash } from 'node:crypto';
import { recordKey } from '../src/ledger/rowIdentity.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { silentLogger } from '../src/logger.js';
import type { FatalStop } from '../src/queue/fatalStop.js';
import type { ReceiptsQueue } from '../src/queue/receiptsQueue.js';
import { RedisKeys } from '../src/redis/keys.js';
import { scriptFiles } from '../src/redis/scripts.js';
import type { ApiResult } from '../src/revenuecat/client.js';
import { KeyRing } from '../src/revenuecat/keyRing.js';
import type { ReceiptJobData } from '../src/types.js';
import { Pacer } from '../src/workers/pacer.js';
import { createProcessor } from '../src/workers/processor.js';
import { SharedRate } from '../src/workers/rate/sharedRate.js';
import { UserLock } from '../src/workers/userLock.js';
import { redisScope } from './support/redis.js';

const scope = redisScope();
const prefix = (name: string): string => scope.prefix(name);
const connect = (): Redis => scope.connect();
afterAll(() => scope.close());

/** The scripts' names by SHA, to tell which script an EVALSHA ran. */
function scriptNames(): Map<string, string> {
  return new Map([...scriptFiles().values()].map((s) => [createHash('sha1').update(s.lua).digest('hex'), s.name]));
}

interface Sent {
  /** a command's name, or for a script `script:<name>` */
  name: string;
  /** when its reply came, in the order of events (-1 while none has) */
  replied: number;
  /** the number of replies already in when it was sent */
  sentAfter: number;
}

/** Records every command a connection sends, and when each one's reply comes back relative to the others. */
function watch(redis: Redis): Sent[] {
  const names = scriptNames();
  const sent: Sent[] = [];
  let replies = 0;
  const original = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    // a script's command is an EVALSHA here (ioredis turns it into EVAL with the text only on the wire, when needed)
    const name = command.name === 'evalsha' ? `script:${names.get(String(command.args[0])) ?? '?'}` : command.name;
    const entry: Sent = { name, replied: -1, sentAfter: replies };
    sent.push(entry);
    const done = (): void => {
      entry.replied = replies++;
    };
    command.promise.then(done, done);
    return original(command, stream);
  };
  return sent;
}

const lockKey = (p: string, user: string): string => new RedisKeys(p).userLock(createHash('sha1').update(user).digest('base64url'));

describe('the user lock and the pacer slot', () => {
  it('are taken in one Redis call, the lock with its expiry and the slot in the pacer log', async () => {
    const p = prefix('lockpace');
    const redis = connect();
    const lock = new UserLock(redis, p, 4000);
    const pacer = new Pacer(redis, p, 1000);
    // the first use of the connection loads the scripts; count from the second
    expect(await lock.acquire('warm-up', { pacer })).toBeDefined();
    const sent = watch(redis);
    const token = await lock.acquire('user-1', { pacer });
    expect(token).toBeDefined();
    expect(sent.map((s) => s.name)).toEqual(['script:lockPace']);
    expect(await redis.get(lockKey(p, 'user-1'))).toBe(token);
    expect(await redis.pttl(lockKey(p, 'user-1'))).toBeGreaterThan(3000);
    expect((await new SharedRate(redis, new RedisKeys(p)).counts()).sent1).toBe(2);
  });

  it('takes no slot for a user whose request is in flight', async () => {
    const p = prefix('busy');
    const redis = connect();
    const lock = new UserLock(redis, p, 4000);
    const pacer = new Pacer(redis, p, 1000);
    await redis.set(lockKey(p, 'user-1'), 'another-worker', 'PX', 4000);
    expect(await lock.acquire('user-1', { pacer })).toBeUndefined();
    expect(await redis.get(lockKey(p, 'user-1'))).toBe('another-worker');
    expect((await new SharedRate(redis, new RedisKeys(p)).counts()).sent1).toBe(0);
  });

  it("is taken over from an earlier attempt of the same row (its worker died with it), never from another row's", async () => {
    const p = prefix('takeover');
    const redis = connect();
    const lock = new UserLock(redis, p, 60_000);
    const pacer = new Pacer(redis, p, 1000);
    // row A's first attempt took the lock, and its worker died: the lock would stand for a minute
    const dead = await lock.acquire('user-1', { pacer, owner: 'R1.row-a' });
    expect(dead).toMatch(/^R1\.row-a#/);
    // another row of the same user still waits for it, with or without the pacer, and takes no slot
    expect(await lock.acquire('user-1', { pacer, owner: 'R1.row-b' })).toBeUndefined();
    expect(await lock.acquire('user-1', { owner: 'R1.row-b' })).toBeUndefined();
    expect(await lock.acquire('user-1', { owner: 'R1.row' })).toBeUndefined(); // a prefix of the owner is not the owner
    expect(await lock.acquire('user-1')).toBeUndefined();
    expect(await redis.get(lockKey(p, 'user-1'))).toBe(dead);
    // row A's next attempt takes it over at once, from the pacer's call and from the lone one
    const again = await lock.acquire('user-1', { pacer, owner: 'R1.row-a' });
    expect(again).toMatch(/^R1\.row-a#/);
    expect(again).not.toBe(dead);
    expect(await redis.get(lockKey(p, 'user-1'))).toBe(again);
    expect(await redis.pttl(lockKey(p, 'user-1'))).toBeGreaterThan(59_000);
    const third = await lock.acquire('user-1', { owner: 'R1.row-a' });
    expect(await redis.get(lockKey(p, 'user-1'))).toBe(third);
    // the dead attempt's token no longer releases anything; the holder's does
    await lock.release('user-1', dead as string);
    expect(await redis.get(lockKey(p, 'user-1'))).toBe(third);
    await lock.release('user-1', third as string);
    expect(await redis.exists(lockKey(p, 'user-1'))).toBe(0);
    expect((await new SharedRate(redis, new RedisKeys(p)).counts()).sent1).toBe(2);
  });

  it('gives the lock back when the schedule is full', async () => {
    const p = prefix('full');
    const redis = connect();
    const lock = new UserLock(redis, p, 4000);
    // one slot a second, and no wait allowed: the second request finds the schedule full
    const pacer = new Pacer(redis, p, 1, 0);
    expect(await lock.acquire('user-1', { pacer })).toBeDefined();
    expect(await lock.acquire('user-2', { pacer })).toBeUndefined();
    expect(await redis.exists(lockKey(p, 'user-2'))).toBe(0);
    expect((await new SharedRate(redis, new RedisKeys(p)).counts()).sent1).toBe(1);
  });

  it('keeps the lock through a 429 that came while the request waited for its slot, and leaves after the pause', async () => {
    const p = prefix('hold');
    const redis = connect();
    const shared = new SharedRate(redis, new RedisKeys(p));
    const lock = new UserLock(redis, p, 10_000);
    const pacer = new Pacer(redis, p, 5); // one slot every 200 ms
    expect(await lock.acquire('user-1', { pacer })).toBeDefined();
    // user-2's slot is ~200 ms away; while it waits, a 429 holds the schedule for 600 ms
    const waiting = lock.acquire('user-2', { pacer });
    const { now } = await shared.counts();
    await shared.counts({ sentAt: now, holdMs: 600, from1: now - 1000, from60: now - 60_000 });
    const token = await waiting;
    expect(token).toBeDefined();
    expect(await redis.get(lockKey(p, 'user-2'))).toBe(token);
    const after = await shared.counts();
    expect(after.now).toBeGreaterThanOrEqual(now + 600);
    // the slot given back is not counted: two requests sent
    expect(after.sent60).toBe(2);
  });

  it('gives the lock back when a 429 pushed the request past the longest wait', async () => {
    const p = prefix('holdfull');
    const redis = connect();
    const shared = new SharedRate(redis, new RedisKeys(p));
    const lock = new UserLock(redis, p, 10_000);
    const pacer = new Pacer(redis, p, 5, 1000); // one slot every 200 ms, at most 1 s ahead
    expect(await lock.acquire('user-1', { pacer })).toBeDefined();
    const waiting = lock.acquire('user-2', { pacer });
    const { now } = await shared.counts();
    // a hold of 5 s: the slot after it is further than the pacer may wait
    await shared.counts({ sentAt: now, holdMs: 5000, from1: now - 1000, from60: now - 60_000 });
    expect(await waiting).toBeUndefined();
    expect(await redis.exists(lockKey(p, 'user-2'))).toBe(0);
    expect((await shared.counts()).sent60).toBe(1);
  });
});

describe('a processed row', () => {
  const answer = (user: string): ApiResult => {
    const subscriber = {
      original_app_user_id: user,
      first_seen: '2024-01-01T00:00:00Z',
      entitlements: {},
      subscriptions: { premium_monthly: { expires_date: '2999-01-01T00:00:00Z', purchase_date: '2024-01-01T00:00:00Z', store: 'play_store' } },
      non_subscriptions: {},
    };
    return { kind: 'response', status: 200, body: { subscriber }, headers: {}, durationMs: 3 };
  };

  function job(i: number): Job<ReceiptJobData, void, string> {
    const token = `token-${i}-abcdefghijklmnop`;
    const data: ReceiptJobData = {
      run: 'R1',
      fp: recordKey('android', token),
      src: 'a.csv',
      line: i + 2,
      platform: 'android',
      body: { app_user_id: `user-${i}`, fetch_token: token, product_id: 'premium_monthly' },
      input: { platform: 'android', app_user_id: `user-${i}`, fetch_token: token, product_id: 'premium_monthly' },
    };
    return { id: `R1.${data.fp}`, data, attemptsMade: 0, timestamp: Date.now(), opts: {} } as unknown as Job<ReceiptJobData, void, string>;
  }

  /** A processor on this prefix's Redis with a real user lock, pacer and ledger; `post` stands for the API. */
  function processorFor(redis: Redis, p: string, ledger: RunLedger, post: (body: ReceiptJobData['body']) => Promise<ApiResult>): ReturnType<typeof createProcessor> {
    const fatal = { keys: { isStopped: () => false, settled: () => Promise.resolve() } } as unknown as FatalStop;
    return createProcessor({
      client: { postReceipt: (_platform, body) => post(body) },
      keys: new KeyRing({ android: { key: 'goog_test_key_0123456789', variable: 'REVENUECAT_API_KEY' } }),
      queue: {} as ReceiptsQueue,
      fatal,
      userLock: new UserLock(redis, p, 4000),
      ledgerFor: () => ledger,
      logger: silentLogger(),
      maxAttempts: 3,
      rateLimitDefaultWaitMs: 1000,
      userBusyDelayMs: 100,
      pacer: new Pacer(redis, p, 100_000),
    });
  }

  it('costs three Redis calls: the lock with the slot, then the release sent with the answer, before either reply', async () => {
    const p = prefix('row');
    const redis = connect();
    const ledger = new RunLedger(redis, p, 'R1');
    const inFlight = new Set<string>();
    let overlaps = 0;
    const process = processorFor(redis, p, ledger, async (body) => {
      if (inFlight.has(body.app_user_id)) overlaps++;
      inFlight.add(body.app_user_id);
      await new Promise((resolve) => setTimeout(resolve, 1));
      inFlight.delete(body.app_user_id);
      return answer(body.app_user_id);
    });
    // the run's first row looks up what the ledger caches (source number, run start, run number, dictionary)
    await process(job(0));
    const sent = watch(redis);
    await process(job(1));
    expect(sent.map((s) => s.name)).toEqual(['script:lockPace', 'script:releaseUserLock', 'script:recordAnswer']);
    const [, release, record] = sent as [Sent, Sent, Sent];
    // the answer went out before the release's reply came back: one round, not two
    expect(record.sentAfter).toBeLessThanOrEqual(release.replied);
    expect(await redis.exists(lockKey(p, 'user-1'))).toBe(0);
    const state = await ledger.state();
    expect(state.rows_succeeded).toBe(2);
    expect(state.requests_sent).toBe(2);
    expect(overlaps).toBe(0);
  });

  it('queued again by a resumed ingest, is sent only if its first job has no answer yet', async () => {
    const p = prefix('recheck');
    const redis = connect();
    const ledger = new RunLedger(redis, p, 'R1');
    const posted: string[] = [];
    const process = processorFor(redis, p, ledger, (body) => {
      posted.push(body.app_user_id);
      return Promise.resolve(answer(body.app_user_id));
    });
    const again = (i: number): Job<ReceiptJobData, void, string> => {
      const j = job(i);
      return { ...j, data: { ...j.data, recheck: true } } as Job<ReceiptJobData, void, string>;
    };
    // row 5's first job was answered (and removed) before the resumed ingest added it again
    await process(job(5));
    await process(again(5));
    // row 6's first job never got an answer: the job added again sends it
    await process(again(6));
    expect(posted).toEqual(['user-5', 'user-6']);
    const state = await ledger.state();
    expect(state.rows_succeeded).toBe(2);
    expect(state.requests_sent).toBe(2);
  });
});
