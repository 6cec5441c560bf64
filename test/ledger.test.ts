// The run ledger's data model against a real Redis: rows keyed by token, conflicts in a run and across runs,
// changed and unchanged rows, the final answer and its request in one call, and buckets that stay listpacks.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RunLedger, type AdmitRow } from '../src/ledger/runLedger.js';
import { PlanLedger } from '../src/ledger/planLedger.js';
import { encodePlace, encodeUser } from '../src/ledger/rowRecord.js';
import { recordSuperseded } from '../src/ledger/scriptCalls.js';
import { tokenFingerprint } from '../src/ledger/rowIdentity.js';
import { TEXT_CODES_CAP } from '../src/ledger/runNumbering.js';
import { keySlot, RedisKeys, SHARDS } from '../src/redis/keys.js';
import type { Outcome, Superseded, SupersededPlace } from '../src/types.js';
import { dropPrefix, redisUrl, uniquePrefix } from './support/redis.js';

let redis: Redis;
const prefixes: string[] = [];
function newPrefix(name: string): string {
  const p = uniquePrefix(name);
  prefixes.push(p);
  return p;
}

beforeAll(() => {
  redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
});
afterAll(async () => {
  for (const p of prefixes) await dropPrefix(p);
  redis.disconnect();
});

function row(line: number, user: string, token: string, extra: Partial<AdmitRow['body']> = {}): AdmitRow {
  return { src: 'a.csv', line, platform: 'ios', body: { app_user_id: user, fetch_token: token, ...extra } };
}

function succeeded(r: AdmitRow, fp: string, over: Partial<Outcome> = {}): Outcome {
  return {
    status: 'succeeded',
    src: r.src,
    line: r.line,
    fp,
    platform: r.platform,
    app_user_id: r.body.app_user_id,
    product_id: 'pro.monthly',
    http_status: 200,
    attempts: 1,
    finished_at: new Date().toISOString(),
    subscriber: {
      original_app_user_id: r.body.app_user_id,
      product_found: 'subscription',
      active_entitlements: [{ id: 'pro', expires_date: '2031-01-01T00:00:00Z', product_identifier: 'pro.monthly' }],
      product: { expires_date: '2031-01-01T00:00:00Z', is_sandbox: false },
    },
    ...over,
  };
}

function failed(r: AdmitRow, fp: string): Outcome {
  return {
    status: 'failed',
    src: r.src,
    line: r.line,
    fp,
    platform: r.platform,
    app_user_id: r.body.app_user_id,
    token: '****',
    http_status: 400,
    code: 7103,
    reason: 'rc_7103',
    message: 'invalid receipt',
    attempts: 1,
    queued_at: new Date().toISOString(),
    finished_at: new Date().toISOString(),
    input: { app_user_id: r.body.app_user_id, receipt: r.body.fetch_token, note: 'kept' },
    body: r.body,
  };
}

/** Admits rows and answers every queued one (success unless `fail` says otherwise), as ingest and workers would. */
async function migrate(ledger: RunLedger, rows: AdmitRow[], opts: { fail?: (r: AdmitRow) => boolean; force?: boolean; onConflict?: 'hold' | 'send' } = {}) {
  await ledger.beginIngest(['a.csv']);
  const admissions = await ledger.admit(rows, opts);
  for (const [i, a] of admissions.entries()) {
    const r = rows[i] as AdmitRow;
    const fp = 'fp' in a ? a.fp : undefined;
    if (fp === undefined) continue;
    const outcome = opts.fail?.(r) ? failed(r, fp) : succeeded(r, fp);
    await ledger.recordAnswer(outcome, { sent: { platform: r.platform, body: r.body }, request: { status: opts.fail?.(r) ? '400' : '200', durationMs: 12, rateLimited: false } });
  }
  await ledger.endIngest();
  return admissions;
}

describe('run ledger', () => {
  it('keeps a success and a failure compactly, counts the request with the answer, and reads both back', async () => {
    const ledger = new RunLedger(redis, newPrefix('ledger-basic'), 'R');
    const ok = row(2, 'user-1', 'tok-1');
    const bad = row(3, 'user-2', 'tok-2');
    const admissions = await migrate(ledger, [ok, bad], { fail: (r) => r === bad });
    expect(admissions.map((a) => a.kind)).toEqual(['new', 'new']);
    const state = await ledger.state();
    expect(state).toMatchObject({ rows_read: 2, rows_queued: 2, rows_succeeded: 1, rows_failed: 1, requests_sent: 2, rows_pending: 0, complete: true });
    expect(state.by_http_status).toEqual({ '200': 1, '400': 1 });

    const outcomes = new Map<string, Outcome>();
    for await (const o of ledger.outcomes()) outcomes.set(o.app_user_id, o);
    const fpOk = admissions[0]?.kind === 'new' ? admissions[0].fp : '';
    // a success: everything but the masked token and the queue time, which its record does not keep
    const { token: _t, queued_at: _q, ...kept } = succeeded(ok, fpOk);
    expect(outcomes.get('user-1')).toEqual({ ...kept, finished_at: outcomes.get('user-1')?.finished_at });
    // a failure: what the ledger needs, without its input, body or masked token (read again from the source)
    const fpBad = admissions[1]?.kind === 'new' ? admissions[1].fp : '';
    const { token: _ft, queued_at: _fq, input: _fi, body: _fb, ...failure } = failed(bad, fpBad);
    expect(outcomes.get('user-2')).toEqual({ ...failure, finished_at: outcomes.get('user-2')?.finished_at });
    expect(await ledger.outcome(fpBad)).toEqual(outcomes.get('user-2'));
    expect(await ledger.outcome(fpOk)).toMatchObject({ status: 'succeeded', app_user_id: 'user-1', line: 2 });
    expect((await ledger.timeline()).reduce((n, p) => n + p.requests, 0)).toBe(2);
    expect((await ledger.latencyBuckets()).reduce((a, b) => a + b, 0)).toBe(2);
    expect((await ledger.recentErrors()).map((e) => e.reason)).toEqual(['rc_7103']);
  });

  it('re-opens failures for a retry and keeps what they replaced as history', async () => {
    const ledger = new RunLedger(redis, newPrefix('ledger-retry'), 'R');
    const bad = row(2, 'user-1', 'tok-1');
    await migrate(ledger, [bad], { fail: () => true });
    const records = [];
    for await (const r of ledger.failedRecords()) records.push({ fp: r.outcome.fp, stored: r.stored });
    expect(records).toHaveLength(1);
    expect(await ledger.reopen(records)).toBe(1);
    expect(await ledger.reopen(records)).toBe(0); // already re-opened: the stored form no longer matches
    expect(await ledger.state()).toMatchObject({ rows_failed: 0, rows_pending: 1, retries: 1 });
    // the retry succeeds
    await ledger.recordAnswer(succeeded(bad, records[0]!.fp), { sent: { platform: bad.platform, body: bad.body } });
    expect(await ledger.state()).toMatchObject({ rows_failed: 0, rows_succeeded: 1, rows_pending: 0 });
    const history = [];
    for await (const h of ledger.history()) history.push(h);
    expect(history.map((h) => [h.status, h.reason])).toEqual([['failed', 'rc_7103']]);
  });

  it('records an answer for a row it has not seen admitted (a failover lost the admission), and the same answer twice once', async () => {
    const ledger = new RunLedger(redis, newPrefix('ledger-unseen'), 'R');
    await ledger.beginIngest(['a.csv']);
    const lost = row(2, 'user-1', 'tok-1');
    const fp = tokenFingerprint('ios', 'tok-1').toString('base64url');
    const answer = succeeded(lost, fp);
    const request = { status: '200', durationMs: 5, rateLimited: false };
    expect(await ledger.recordAnswer(answer, { sent: { platform: 'ios', body: lost.body }, request })).toBe(true);
    // counted as admitted, queued and answered: nothing pending, nothing missing
    expect(await ledger.state()).toMatchObject({ rows_read: 1, rows_queued: 1, rows_succeeded: 1, rows_pending: 0, requests_sent: 1 });
    // the very same call again (sent twice): nothing changes, its request is not counted twice, no history
    expect(await ledger.recordAnswer(answer, { sent: { platform: 'ios', body: lost.body }, request })).toBe(true);
    expect(await ledger.state()).toMatchObject({ rows_read: 1, rows_queued: 1, rows_succeeded: 1, requests_sent: 1 });
    // the admission, done again once Redis is back (a reconcile or a resumed ingest), finds the row finished
    expect((await ledger.admit([lost])).map((a) => a.kind)).toEqual(['done']);
    expect(await ledger.state()).toMatchObject({ rows_read: 1, rows_queued: 1, rows_succeeded: 1 });
    const history = [];
    for await (const h of ledger.history()) history.push(h);
    expect(history).toEqual([]);
    // a later, different answer (the job ran again) replaces it and keeps the first in the history
    await ledger.recordAnswer({ ...answer, finished_at: new Date(Date.parse(answer.finished_at) + 1000).toISOString() }, { request });
    expect(await ledger.state()).toMatchObject({ rows_succeeded: 1, requests_sent: 2 });
    for await (const h of ledger.history()) history.push(h);
    expect(history).toHaveLength(1);
  });

  it('keeps failure messages unique to their row inline once the dictionary is full, and reads every one back', async () => {
    const prefix = newPrefix('ledger-messages');
    const ledger = new RunLedger(redis, prefix, 'R');
    const n = TEXT_CODES_CAP + 100;
    const rows = Array.from({ length: n }, (_, i) => row(i + 2, `user-${i}`, `tok-${i}`));
    const admissions = await ledger.admit(rows);
    await Promise.all(
      admissions.map((a, i) => {
        const r = rows[i] as AdmitRow;
        return ledger.recordAnswer({ ...failed(r, 'fp' in a ? a.fp : ''), message: `receipt of row ${i} refused: ${'x'.repeat(i % 7)}` });
      }),
    );
    expect(await ledger.state()).toMatchObject({ rows_failed: n });
    // the dictionary stopped taking new texts at its cap (the reason and the first messages took the codes)
    expect(await redis.hlen(new RedisKeys(prefix).run('R').dict)).toBe(TEXT_CODES_CAP);
    const messages = new Map<number, string | undefined>();
    for await (const f of ledger.failedRecords()) messages.set(f.outcome.line, f.outcome.message);
    expect(messages.size).toBe(n);
    for (let i = 0; i < n; i++) expect(messages.get(i + 2)).toBe(`receipt of row ${i} refused: ${'x'.repeat(i % 7)}`);
  });

  it("keeps none of a failed row's 3 KB receipt in Redis: its record stays in a listpack bucket", async () => {
    const prefix = newPrefix('ledger-receipt');
    const ledger = new RunLedger(redis, prefix, 'R');
    const receipt = randomBytes(2250).toString('base64');
    const bad = row(2, '5f0c1b2a-3d4e-4f50-8a6b-7c8d9e0f1a2b', receipt, { product_id: 'com.example.premium.monthly' });
    await migrate(ledger, [bad], { fail: () => true });
    expect(await ledger.state()).toMatchObject({ rows_failed: 1 });
    // every key of the run and the index together weigh less than the receipt alone
    let bytes = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) bytes += Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
    } while (cursor !== '0');
    expect(bytes).toBeLessThan(receipt.length);
    // no record was too long for a bucket
    expect(await redis.exists(new RedisKeys(prefix).runShard('R', 0).wide)).toBe(0);
    for await (const f of ledger.failedRecords()) expect(Buffer.from(f.stored, 'base64').length).toBeLessThanOrEqual(64);
  });

  it("keeps what a canary did in the run's meta", async () => {
    const ledger = new RunLedger(redis, newPrefix('ledger-meta'), 'R');
    await ledger.beginIngest(['a.csv', 's3://b/k.csv']);
    await ledger.saveCanary({ limit: 10, sent: 7 });
    expect(await ledger.canary()).toEqual({ limit: 10, sent: 7 });
    await ledger.saveCanary(undefined);
    expect(await ledger.canary()).toBeUndefined();
  });

  it('within a run: same token and user is a duplicate; same token, another user is a conflict, held or sent', async () => {
    const ledger = new RunLedger(redis, newPrefix('ledger-conflict'), 'R');
    await ledger.beginIngest(['a.csv']);
    const rows = [row(2, 'alice', 'shared'), row(3, 'alice', 'shared'), row(4, 'bob', 'shared'), row(5, 'carol', 'other')];
    const first = await ledger.admit(rows);
    expect(first.map((a) => a.kind)).toEqual(['new', 'duplicate', 'conflict', 'new']);
    expect(first[1]).toEqual({ kind: 'duplicate', first: 'a.csv#2' });
    expect(first[2]).toEqual({ kind: 'conflict', held: true });
    // admitted again (a resumed ingest): nothing changes, nothing is counted twice
    const again = await ledger.admit(rows);
    expect(again.map((a) => a.kind)).toEqual(['requeue', 'duplicate', 'done', 'requeue']);
    // with onConflict 'send', a third user's row is queued under a key of its own
    const sent = await ledger.admit([row(6, 'dave', 'shared')], { onConflict: 'send' });
    expect(sent[0]).toMatchObject({ kind: 'conflict', held: false });
    const fps = new Set([first[0], sent[0]].map((a) => (a && 'fp' in a ? a.fp : '')));
    expect(fps.size).toBe(2);
    await ledger.endIngest();
    expect(await ledger.state()).toMatchObject({ rows_read: 4, rows_queued: 3, rows_conflict: 2, rows_held: 1 });

    const conflicts = [];
    for await (const c of ledger.conflicts()) conflicts.push(c);
    conflicts.sort((a, b) => a.line - b.line);
    expect(conflicts).toEqual([
      { src: 'a.csv', line: 4, app_user_id: 'bob', fp: expect.any(String), held: true, other: { run_id: 'R', src: 'a.csv', line: 2, app_user_id: 'alice' } },
      { src: 'a.csv', line: 6, app_user_id: 'dave', fp: expect.any(String), held: false, other: { run_id: 'R', src: 'a.csv', line: 2, app_user_id: 'alice' } },
    ]);
    const rowsByStatus: Record<string, number> = {};
    for await (const r of ledger.rows()) rowsByStatus[r.status] = (rowsByStatus[r.status] ?? 0) + 1;
    expect(rowsByStatus).toEqual({ queued: 3, held: 1 });
  });

  it('tells users apart in every packed form (UUIDs, anonymous ids, numbers, text) inside the scripts', async () => {
    const ledger = new RunLedger(redis, newPrefix('ledger-users'), 'R');
    await ledger.beginIngest(['a.csv']);
    const users = [
      '5f0c1b2a-3d4e-4f50-8a6b-7c8d9e0f1a2b',
      '5F0C1B2A-3D4E-4F50-8A6B-7C8D9E0F1A2B',
      '$RCAnonymousID:0123456789abcdef0123456789abcdef',
      '$RCAnonymousID:0123',
      '0123abcd',
      '4711',
      'Ünïcödé',
    ];
    // each user twice with its own token (the second a duplicate), then everyone on one shared token
    const rows = users.flatMap((u, i) => [row(10 * i + 2, u, `own-${i}`), row(10 * i + 3, u, `own-${i}`)]);
    rows.push(...users.map((u, i) => row(100 + i, u, 'shared')));
    const kinds = (await ledger.admit(rows)).map((a) => a.kind);
    expect(kinds).toEqual([...users.flatMap(() => ['new', 'duplicate']), 'new', ...users.slice(1).map(() => 'conflict')]);
  });

  it('across runs: unchanged rows are already migrated, changed ones are sent as updated, another user is a conflict', async () => {
    const prefix = newPrefix('ledger-runs');
    const night1 = new RunLedger(redis, prefix, 'night-1');
    await migrate(night1, [row(2, 'alice', 'tok-a', { product_id: 'p' }), row(3, 'bob', 'tok-b'), row(4, 'erin', 'tok-e'), row(5, 'carol', 'tok-c')], {
      fail: (r) => r.body.app_user_id === 'erin',
    });

    const night2 = new RunLedger(redis, prefix, 'night-2');
    const rows2 = [
      row(2, 'carol', 'tok-c'), // unchanged
      row(3, 'bob', 'tok-b', { attributes: { $email: { value: 'bob@example.com', updated_at_ms: 1 } } }), // changed: an attribute
      row(4, 'mallory', 'tok-a', { product_id: 'p' }), // tok-a was migrated for alice
      row(5, 'erin', 'tok-e'), // failed last night: not migrated, sent again
    ];
    const admissions = await migrate(night2, rows2);
    expect(admissions.map((a) => a.kind)).toEqual(['migrated', 'updated', 'conflict', 'new']);
    expect(await night2.state()).toMatchObject({
      rows_read: 4,
      rows_already_migrated: 1,
      rows_updated: 1,
      rows_queued: 2,
      rows_conflict: 1,
      rows_held: 1,
      rows_succeeded: 2,
      complete: true,
    });
    const skipped = [];
    for await (const m of night2.alreadyMigrated()) skipped.push(m.line);
    expect(skipped).toEqual([2]);
    const conflicts = [];
    for await (const c of night2.conflicts()) conflicts.push(c);
    expect(conflicts).toEqual([
      { src: 'a.csv', line: 4, app_user_id: 'mallory', fp: expect.any(String), held: true, other: { run_id: 'night-1', src: 'a.csv', line: 2, app_user_id: 'alice' } },
    ]);

    // An attribute's timestamp is not part of the payload: the same value read again is unchanged.
    const night3 = new RunLedger(redis, prefix, 'night-3');
    const bobAgain = row(3, 'bob', 'tok-b', { attributes: { $email: { value: 'bob@example.com', updated_at_ms: 999 } } });
    expect((await migrate(night3, [bobAgain])).map((a) => a.kind)).toEqual(['migrated']);
    // --force sends an unchanged row again (and a conflict is still a conflict)
    const night4 = new RunLedger(redis, prefix, 'night-4');
    expect((await migrate(night4, [bobAgain, row(4, 'mallory', 'tok-a', { product_id: 'p' })], { force: true })).map((a) => a.kind)).toEqual(['new', 'conflict']);
    // In one run, a token's second user conflicts with its first row there, even when that row was skipped.
    const night5 = new RunLedger(redis, prefix, 'night-5');
    const both = await migrate(night5, [row(7, 'alice', 'tok-a', { product_id: 'p' }), row(8, 'mallory', 'tok-a', { product_id: 'p' })]);
    expect(both.map((a) => a.kind)).toEqual(['migrated', 'conflict']);
    const inRun = [];
    for await (const c of night5.conflicts()) inRun.push(c.other);
    expect(inRun).toEqual([{ run_id: 'night-5', src: 'a.csv', line: 7, app_user_id: 'alice' }]);
  });

  it('keeps every bucket a listpack under the default limits as a run grows, and spreads a run over every shard', async () => {
    const prefix = newPrefix('ledger-grow');
    const ledger = new RunLedger(redis, prefix, 'big');
    await ledger.beginIngest(['a.csv']);
    const n = 12_000;
    for (let start = 0; start < n; start += 1000) {
      const rows = Array.from({ length: 1000 }, (_, i) => row(start + i + 2, `${4_000_000 + start + i}`, `token-${start + i}`));
      const admissions = await ledger.admit(rows);
      await Promise.all(
        admissions.map((a, i) => ledger.recordAnswer(succeeded(rows[i] as AdmitRow, 'fp' in a ? a.fp : ''), { sent: { platform: 'ios', body: (rows[i] as AdmitRow).body } })),
      );
    }
    await ledger.endIngest();
    expect(await ledger.state()).toMatchObject({ rows_read: n, rows_succeeded: n, complete: true });

    const names = new RedisKeys(prefix);
    const slots = new Set<number>();
    let buckets = 0;
    for (let s = 0; s < SHARDS; s++) {
      for (const table of [names.runShard('big', s).buckets, names.index(s).buckets]) {
        const keys: string[] = [];
        let cursor = '0';
        do {
          const [next, found] = await redis.scan(cursor, 'MATCH', `${table}*`, 'COUNT', 1000);
          cursor = next;
          keys.push(...found);
        } while (cursor !== '0');
        expect(keys.length).toBeGreaterThan(1); // the table grew past its first bucket
        for (const key of keys) {
          slots.add(keySlot(key));
          buckets++;
          // 128 is Redis's default hash-max-listpack-entries (redis.conf); this server may allow more
          expect(await redis.hlen(key)).toBeLessThanOrEqual(128);
          expect(await redis.object('ENCODING', key)).toBe('listpack');
        }
      }
    }
    expect(buckets).toBeGreaterThanOrEqual((2 * n) / 128);
    expect(slots.size).toBe(SHARDS);
    const outcomes = new Set<string>();
    for await (const o of ledger.outcomes()) outcomes.add(o.fp);
    expect(outcomes.size).toBe(n);
  });
});

describe('superseded rows', () => {
  // App User IDs in every packed form, and one too long for a listpack value (which the record no longer holds)
  const users = ['9b2f6c1e-4a4d-4c47-8a0e-2f1d3c4b5a69', '$RCAnonymousID:0123456789abcdef0123456789abcdef', '123456789', `user-${'x'.repeat(80)}`];
  const rowOf = (i: number): Superseded => ({
    src: i % 3 === 0 ? 'b.csv' : 'a.csv',
    line: 2 + i,
    app_user_id: `${users[i % users.length] as string}${i % users.length === 3 ? i : ''}`,
    // the carrier: another source for some rows, a line far away for others
    by: { src: i % 5 === 0 ? 'c.csv' : 'a.csv', line: 1_000_000 + 7 * i },
  });
  const byPlace = (a: SupersededPlace, b: SupersededPlace): number => a.src.localeCompare(b.src) || a.line - b.line;
  // what the ledger lists of a superseded row: its place and its carrier's (superseded.csv reads the user again)
  const placeOf = ({ app_user_id: _, ...place }: Superseded): SupersededPlace => place;

  it("keeps each superseded row's place and its carrier's, not its user, counts it once however often it is recorded, in listpack buckets", async () => {
    const prefix = newPrefix('ledger-sup');
    const ledger = new RunLedger(redis, prefix, 'sup');
    await ledger.beginIngest(['a.csv', 'b.csv', 'c.csv']);
    const n = 4000;
    const rows = Array.from({ length: n }, (_, i) => rowOf(i));
    // in chunks, as the ingester records them: one call per shard a chunk's rows fall in
    let added = 0;
    for (let at = 0; at < n; at += 300) added += await ledger.supersede(rows.slice(at, at + 300));
    expect(added).toBe(n);
    // recorded again (a resumed ingest, a call sent twice, a place twice in one call): nothing new, nothing counted
    expect(await ledger.supersede(rows.slice(0, 500))).toBe(0);
    expect(await ledger.supersede([rowOf(n), rowOf(n)])).toBe(1);
    expect(await ledger.supersede([])).toBe(0);
    // a row given by a transaction id, superseded after its lookup: listed with them, in its record key's shard
    const lookedUp: AdmitRow = { src: 'c.csv', line: 9, platform: 'ios', body: { app_user_id: 'u-lookup', fetch_token: '2000000000000042' } };
    const [admitted] = await ledger.admit([lookedUp]);
    const late: Superseded = { src: 'c.csv', line: 9, app_user_id: 'u-lookup', by: { src: 'b.csv', line: 4 } };
    expect(await ledger.supersedeAdmitted(admitted?.kind === 'new' ? admitted.fp : '', late)).toBe(true);
    expect(await ledger.supersedeAdmitted(admitted?.kind === 'new' ? admitted.fp : '', late)).toBe(false);
    await ledger.endIngest();

    expect(await ledger.state()).toMatchObject({ rows_read: n + 2, rows_superseded: n + 2, rows_queued: 0 });
    const listed: SupersededPlace[] = [];
    for await (const s of ledger.superseded()) listed.push(s);
    expect(listed.sort(byPlace)).toEqual([...rows, rowOf(n), late].map(placeOf).sort(byPlace));

    // packed: every bucket a listpack under the default limits, the table grown in every shard, every record the
    // format byte and the carrier's place (5 bytes for a line over 2^14), none in the wide hashes whatever the user
    const names = new RedisKeys(prefix);
    let wide = 0;
    const recordSizes = new Set<number>();
    for (let s = 0; s < SHARDS; s++) {
      const k = names.runShard('sup', s);
      expect(Number(await redis.hget(k.superseded, 'lh:level'))).toBeGreaterThan(0);
      wide += await redis.hlen(k.supersededWide);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${k.supersededBuckets}*`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          expect(await redis.hlen(key)).toBeLessThanOrEqual(128);
          expect(await redis.object('ENCODING', key)).toBe('listpack');
          for (const record of await redis.hvalsBuffer(key)) recordSizes.add(record.length);
        }
      } while (cursor !== '0');
    }
    expect(wide).toBe(0);
    // 3 bytes: the looked-up row's carrier, line 4
    expect([...recordSizes].sort((a, b) => a - b)).toEqual([3, 5]);
  });

  it('refuses superseded rows kept by an older version (a plain hash of text) rather than listing none', async () => {
    const prefix = newPrefix('ledger-sup-old');
    const ledger = new RunLedger(redis, prefix, 'old');
    await ledger.beginIngest(['a.csv']);
    await redis.hset(new RedisKeys(prefix).runShard('old', 2).superseded, '0:2', '0:7:u1');
    const read = async (): Promise<void> => {
      for await (const _ of ledger.superseded()) void _;
    };
    await expect(read()).rejects.toThrow(/superseded rows of an older format.*another version of rc-migrate/);
  });

  it("refuses records that held the row's user (format 1, 09a7fa9) by name, rather than listing them without", async () => {
    const prefix = newPrefix('ledger-sup-v1');
    const ledger = new RunLedger(redis, prefix, 'v1');
    await ledger.beginIngest(['a.csv']);
    const record = Buffer.concat([Buffer.from([1]), encodePlace(0, 7), encodeUser('u1')]);
    expect(await recordSuperseded(redis, { shard: new RedisKeys(prefix).runShard('v1', 2), rows: [{ place: encodePlace(0, 2), record }] })).toBe(1);
    const read = async (): Promise<void> => {
      for await (const _ of ledger.superseded()) void _;
    };
    await expect(read()).rejects.toThrow("a superseded row's record of format 1, this version reads format 2: a ledger written by another version of rc-migrate");
  });

  it("a plan's ledger leaves none of its superseded rows behind", async () => {
    const prefix = newPrefix('ledger-sup-plan');
    const plan = new PlanLedger(redis, prefix, 'plan-sup');
    await plan.beginIngest(['a.csv', 'b.csv', 'c.csv']);
    expect(await plan.supersede(Array.from({ length: 2000 }, (_, i) => rowOf(i)))).toBe(2000);
    expect(await redis.exists(`${new RedisKeys(prefix).runShard('plan-sup', 0).supersededBuckets}1`)).toBe(1);
    await plan.drop();
    const [, left] = await redis.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 100_000);
    expect(left).toEqual([]);
  });
});
