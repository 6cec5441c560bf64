// The ledger on a real Redis Cluster (three masters, three replicas on loopback): every script touches one slot
// whatever the prefix, and one run's rows and the cross-run index land in every shard slot and on every master.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { connectRedis, type RedisClient } from '../src/redis/connection.js';
import { RunLedger, type AdmitRow } from '../src/ledger/runLedger.js';
import { RedisKeys, SHARDS } from '../src/redis/keys.js';
import { outcomeFor } from './support/ledgerOutcomes.js';
import { startRedisCluster, type RedisClusterHandle } from './support/redisCluster.js';

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

const row = (line: number, user: string, token: string): AdmitRow => ({
  src: 'a.csv',
  line,
  platform: 'android',
  body: { app_user_id: user, fetch_token: token, product_id: 'gold' },
});

describe('the ledger on a Redis Cluster', () => {
  it.each(['plain', '{tagged}'])(
    'with a %s prefix: every operation works and one run spreads over every shard and master',
    async (kind) => {
      const prefix = kind === 'plain' ? `t-lc-${randomBytes(3).toString('hex')}` : `{t-lc-${randomBytes(3).toString('hex')}}`;
      const ledger = new RunLedger(redis, prefix, 'R1');
      await ledger.beginIngest(['a.csv']);
      const rows = Array.from({ length: 400 }, (_, i) => row(i + 2, `user-${i % 150}`, `token-${i}`));
      rows.push(row(500, 'someone-else', 'token-7')); // a conflict
      const admissions = await ledger.admit(rows);
      expect(admissions.filter((a) => a.kind === 'new')).toHaveLength(400);
      expect(admissions.at(-1)).toEqual({ kind: 'conflict', held: true });
      await Promise.all(
        admissions.map((a, i) => {
          if (a.kind !== 'new') return Promise.resolve(false);
          const r = rows[i] as AdmitRow;
          return ledger.recordAnswer(outcomeFor(r, a.fp, i % 10 === 3 ? 'failed' : 'succeeded'), {
            sent: { platform: r.platform, body: r.body },
            request: { status: '200', durationMs: 5, rateLimited: false },
          });
        }),
      );
      await ledger.reject({ src: 'a.csv', line: 600, reason: 'bad' });
      await ledger.endIngest();
      const failed: { fp: string; stored: string }[] = [];
      for await (const f of ledger.failedRecords()) failed.push({ fp: f.outcome.fp, stored: f.stored });
      expect(failed).toHaveLength(40);
      expect(await ledger.reopen(failed.slice(0, 5))).toBe(5);
      expect(await ledger.state()).toMatchObject({
        rows_read: 402,
        rows_queued: 400,
        rows_succeeded: 360,
        rows_failed: 35,
        rows_pending: 5,
        rows_held: 1,
        requests_sent: 400,
        retries: 1,
      });
      let outcomes = 0;
      for await (const _ of ledger.outcomes()) outcomes++;
      expect(outcomes).toBe(395);
      const conflicts = [];
      for await (const c of ledger.conflicts()) conflicts.push(c.other);
      expect(conflicts).toEqual([{ run_id: 'R1', src: 'a.csv', line: 9, app_user_id: 'user-7' }]);
      // A later run finds what this one migrated, on every shard.
      const next = new RunLedger(redis, prefix, 'R2');
      await next.beginIngest(['a.csv']);
      const again = await next.admit(rows.slice(0, 400));
      expect(again.filter((a) => a.kind === 'migrated')).toHaveLength(360);

      // Where the keys are: CLUSTER KEYSLOT of every shard's keys, and the master serving each.
      const keys = new RedisKeys(prefix);
      const slots = new Set<number>();
      const masters = new Set<number>();
      for (let s = 0; s < SHARDS; s++) {
        const shard = keys.runShard('R1', s);
        const slot = Number(await redis.call('CLUSTER', 'KEYSLOT', shard.counters));
        expect(Number(await redis.call('CLUSTER', 'KEYSLOT', `${shard.buckets}0`))).toBe(slot);
        expect(Number(await redis.call('CLUSTER', 'KEYSLOT', keys.index(s).state))).toBe(slot);
        slots.add(slot);
        masters.add(await cluster.masterOf(shard.counters));
      }
      expect(slots.size).toBe(SHARDS);
      expect(masters.size).toBe(3);
    },
    120_000,
  );
});
