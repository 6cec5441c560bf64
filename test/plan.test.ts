// `rc-migrate plan`: everything a run would find, counted exactly, and nothing sent (the sandbox sees no
// request); its ledger in Redis is gone afterwards.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { planMigration } from '../src/commands/plan.js';
import { planEta } from '../src/commands/planEta.js';
import { runMigration } from '../src/commands/run.js';
import { silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { redisUrl } from './support/redis.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id', 'expires_at', '$email'];
const DAY = 86_400_000;
const iso = (ms: number): string => new Date(ms).toISOString();

async function keysOf(prefix: string, needle: string): Promise<string[]> {
  const redis = new Redis(redisUrl());
  try {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      found.push(...keys.filter((k) => k.includes(needle)));
    } while (cursor !== '0');
    return found;
  } finally {
    redis.disconnect();
  }
}

describe('rc-migrate plan', () => {
  const fx = pipelineFixture('plan');
  const logger = silentLogger();

  it('counts what a run would do, exactly, sends nothing, needs no API key, and leaves no key behind', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    // An earlier run migrated five iOS rows.
    const earlier = Array.from({ length: 5 }, (_, i) => ['ios', `p-${i}`, token(100 + i), '', '', `p${i}@example.com`]);
    await runMigration({ config, logger, sources: [await writeCsv(fx.dir, 'earlier.csv', HEADER, earlier)], runId: 'plan-earlier', outDir: join(fx.dir, 'earlier') });

    const now = Date.now();
    const fresh = [
      ...Array.from({ length: 6 }, (_, i) => ['ios', `n-${i}`, token(200 + i), '', '', '']),
      ['android', 'g-0', token(300), 'com.example.monthly', iso(now + 30 * DAY), ''],
      ['android', 'g-1', token(301), 'com.example.monthly', iso(now - 200 * DAY), ''], // past Google's cut-off
      ['android', 'g-2', token(302), 'com.example.monthly', '', ''],
      ['android', 'g-3', token(303), 'com.example.monthly', '', ''],
    ];
    const rows = [
      ...earlier.slice(0, 3), // already migrated: same user, token and payload
      ['ios', 'p-3', token(103), '', '', 'new-address@example.com'], // changed since: updated, sent again
      ['ios', 'p-thief', token(104), '', '', ''], // p-4's token under another user: a conflict across runs
      ...fresh,
      fresh[0] as string[], // a duplicate of n-0
      ['ios', 'n-other', token(201), '', '', ''], // n-1's token under another user: a conflict in the file
      ['ios', 'null', token(400), '', '', ''], // rejected: blocklisted App User ID
      ['android', 'g-bad', token(401), '', '', ''], // rejected: no product_id
    ];
    const source = await writeCsv(fx.dir, 'plan.csv', HEADER, rows);
    const requestsBefore = fx.sandbox.stats().requests;

    const keyless = testConfig(fx.prefix, fx.sandbox.url, { apiKey: undefined });
    expect(keyless.apiKey).toBeUndefined();
    const { plan, files, exitCode } = await planMigration({ config: keyless, logger, sources: [source], outDir: join(fx.dir, 'plan') });

    expect(fx.sandbox.stats().requests).toBe(requestsBefore);
    expect(exitCode).toBe(1);
    expect(plan).toMatchObject({
      sources: [source],
      rows_read: rows.length,
      rows_rejected: 2,
      rows_duplicate: 1,
      conflicts: 2,
      conflicts_held: 2,
      already_migrated: 3,
      updated: 1,
      rows_to_send: 11, // the 10 fresh rows and the updated one
      rows_per_platform: { ios: 3 + 1 + 1 + 6 + 1 + 1, android: 4 },
      to_send_per_platform: { ios: 7, android: 4 },
      past_google_cutoff: 1,
    });
    expect(plan.rows_rejected + plan.rows_duplicate + plan.already_migrated + plan.conflicts_held + plan.rows_to_send).toBe(plan.rows_read);
    expect(plan.eta.seconds).toBeGreaterThan(0);
    expect(plan.eta.rate_per_second).toBeGreaterThan(0);

    const written = JSON.parse(await readFile(files.plan, 'utf8')) as Record<string, unknown>;
    expect(written).toMatchObject({ rows_read: rows.length, rows_to_send: 11, conflicts: 2 });
    const rejected = await readCsvFile(files.rejected);
    expect(rejected.map((r) => [r.error_line, r.app_user_id])).toEqual([
      [String(rows.length), 'null'],
      [String(rows.length + 1), 'g-bad'],
    ]);
    const conflicts = await readCsvFile(files.conflicts);
    expect(conflicts).toEqual([
      expect.objectContaining({ line: '6', app_user_id: 'p-thief', action: 'held', token: 'tok0…6789', other_run: 'plan-earlier', other_app_user_id: 'p-4', other_line: '6' }),
      expect.objectContaining({
        line: String(rows.length - 1),
        app_user_id: 'n-other',
        action: 'held',
        other_run: '',
        other_source: source,
        other_line: '8',
        other_app_user_id: 'n-1',
      }),
    ]);
    // Full tokens stay out of the plan's files.
    for (const f of [files.plan, files.conflicts]) expect(await readFile(f, 'utf8')).not.toContain(token(104));

    // Nothing of the plan is left in Redis, and it never was a run.
    expect(await keysOf(fx.prefix, plan.plan_id)).toEqual([]);
    const redis = new Redis(redisUrl());
    try {
      expect(await redis.zcard(`${fx.prefix}:plans`)).toBe(0);
      expect(await redis.zscore(`${fx.prefix}:runs`, plan.plan_id)).toBeNull();
    } finally {
      redis.disconnect();
    }

    // A run of the same file does what the plan said.
    const run = await runMigration({ config, logger, sources: [source], runId: 'plan-run', outDir: join(fx.dir, 'run') });
    expect(run.summary).toMatchObject({
      rows_read: plan.rows_read,
      rows_rejected: plan.rows_rejected,
      rows_duplicate: plan.rows_duplicate,
      rows_conflict: plan.conflicts,
      rows_held: plan.conflicts_held,
      already_migrated: plan.already_migrated,
      rows_updated: plan.updated,
      rows_queued: plan.rows_to_send,
    });
  });

  it('exits 0 for sources without rejects or conflicts, and counts --on-conflict send and --force as rows to send', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const clean = await writeCsv(
      fx.dir,
      'clean.csv',
      HEADER,
      Array.from({ length: 20 }, (_, i) => ['ios', `clean-${i}`, token(900 + i), '', '', '']),
    );
    const ok = await planMigration({ config, logger, sources: [clean], outDir: join(fx.dir, 'plan-clean') });
    expect(ok.exitCode).toBe(0);
    expect(ok.plan).toMatchObject({ rows_read: 20, rows_to_send: 20, rows_rejected: 0, conflicts: 0 });

    // Once migrated, the same file plans as already migrated; with --force as rows to send again.
    await runMigration({ config, logger, sources: [clean], runId: 'plan-clean-run', outDir: join(fx.dir, 'clean-run') });
    const again = await planMigration({ config, logger, sources: [clean], outDir: join(fx.dir, 'plan-again') });
    expect(again.plan).toMatchObject({ rows_read: 20, rows_to_send: 0, already_migrated: 20 });
    expect(again.exitCode).toBe(0);
    const forced = await planMigration({ config, logger, sources: [clean], force: true, outDir: join(fx.dir, 'plan-forced') });
    expect(forced.plan).toMatchObject({ rows_read: 20, rows_to_send: 20, already_migrated: 0 });

    const shared = await writeCsv(fx.dir, 'shared.csv', HEADER, [
      ['ios', 'one', token(950), '', '', ''],
      ['ios', 'two', token(950), '', '', ''],
    ]);
    const sending = await planMigration({ config, logger, sources: [shared], onConflict: 'send', outDir: join(fx.dir, 'plan-send') });
    expect(sending.exitCode).toBe(1); // a conflict is still a conflict
    expect(sending.plan).toMatchObject({ conflicts: 1, conflicts_held: 0, rows_to_send: 2 });
    expect((await readCsvFile(sending.files.conflicts))[0]).toMatchObject({ action: 'sent', app_user_id: 'two', other_app_user_id: 'one' });
  });
});

describe('plan ETA', () => {
  it('at the learned rate (capped by --rate), else --rate, else a range', () => {
    expect(planEta(980, { headroom: 0.98, configured: 10 })).toMatchObject({ rate_source: 'configured', rate_per_second: 9.8, seconds: 100 });
    expect(planEta(980, { headroom: 0.98, configured: 10, learned: { scope: 'all', rate: 5, phase: 'holding', window: 'second' } })).toMatchObject({
      rate_source: 'learned',
      seconds: 200,
    });
    expect(planEta(980, { headroom: 0.98, configured: 2, learned: { scope: 'all', rate: 5, phase: 'holding', window: 'second' } })).toMatchObject({ seconds: 500 });
    const unknown = planEta(1000, { headroom: 0.98 });
    expect(unknown).toMatchObject({ rate_source: 'unknown', range_seconds: [50, 1000] });
    expect(unknown.text).toMatch(/^unknown: the rate will be discovered/);
    expect(unknown.seconds).toBeUndefined();
  });
});
