// The uses after the first migration: nightly runs over overlapping exports, and re-running what failed.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runMigration } from '../src/commands/run.js';
import { retryRun, isTransientFailure } from '../src/commands/retry.js';
import { runStatus } from '../src/commands/status.js';
import { silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token'];

describe('nightly backfills and retries', () => {
  const fx = pipelineFixture('backfill');
  const logger = silentLogger();

  it('a second run over the same data sends nothing, counting the rows as already migrated; --force sends again', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const day1 = await writeCsv(
      fx.dir,
      'day1.csv',
      HEADER,
      Array.from({ length: 50 }, (_, i) => ['ios', `n-${i}`, token(i)]),
    );
    // The next night's export repeats yesterday's rows and adds ten new ones.
    const day2 = await writeCsv(
      fx.dir,
      'day2.csv',
      HEADER,
      Array.from({ length: 60 }, (_, i) => ['ios', `n-${i}`, token(i)]),
    );

    const first = await runMigration({ config, logger, sources: [day1], runId: 'night-1', outDir: join(fx.dir, 'n1') });
    expect(first.summary.rows_succeeded).toBe(50);
    const sentBefore = fx.sandbox.stats().receiptPosts.total;

    const second = await runMigration({ config, logger, sources: [day2], runId: 'night-2', outDir: join(fx.dir, 'n2') });
    expect(second.exitCode).toBe(0);
    expect(second.summary).toMatchObject({ rows_read: 60, already_migrated: 50, rows_queued: 10, rows_succeeded: 10 });
    expect(fx.sandbox.stats().receiptPosts.total - sentBefore).toBe(10);
    const skipped = await readCsvFile(second.files.alreadyMigrated);
    expect(skipped.map((r) => Number(r.line))).toEqual(Array.from({ length: 50 }, (_, i) => i + 2));

    const third = await runMigration({ config, logger, sources: [day1], runId: 'night-3', outDir: join(fx.dir, 'n3') });
    expect(third.summary).toMatchObject({ already_migrated: 50, rows_queued: 0 });
    expect(fx.sandbox.stats().receiptPosts.total - sentBefore).toBe(10);

    const forced = await runMigration({ config, logger, sources: [day1], runId: 'night-4', outDir: join(fx.dir, 'n4'), force: true });
    expect(forced.summary).toMatchObject({ already_migrated: 0, rows_succeeded: 50 });
    expect(fx.sandbox.stats().receiptPosts.total - sentBefore).toBe(60);
  });

  it('retry turns rows that ran out of attempts into successes and keeps the earlier outcomes as history', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url, { maxAttempts: 2 });
    const rows = [
      ...Array.from({ length: 20 }, (_, i) => ['ios', `ok-${i}`, token(100 + i)]),
      // the store fails three times for these: two attempts in the run are not enough
      ...Array.from({ length: 5 }, (_, i) => ['ios', `flaky-${i}`, token(200 + i, 'flaky3')]),
      ['ios', 'bad-1', token(300, 'invalid')],
    ];
    const source = await writeCsv(fx.dir, 'retry.csv', HEADER, rows);
    const run = await runMigration({ config, logger, sources: [source], runId: 'retry', outDir: join(fx.dir, 'r0') });
    expect(run.exitCode).toBe(1);
    expect(run.summary).toMatchObject({ rows_succeeded: 20, rows_failed: 6 });
    expect(run.summary.by_error_code).toEqual({ rc_7101: 5, rc_7103: 1 });

    const status = await runStatus({ config, runId: 'retry', sampleMs: 0 });
    expect(status.status).toBe('complete');
    expect(status.recentErrors.map((e) => e.reason).sort()).toEqual(['rc_7101', 'rc_7101', 'rc_7101', 'rc_7101', 'rc_7101', 'rc_7103']);

    // Default: only the transient failures go again.
    const retried = await retryRun({ config, logger, runId: 'retry', outDir: join(fx.dir, 'r1') });
    expect(retried.requeued).toBe(5);
    expect(retried.exitCode).toBe(1);
    expect(retried.summary).toMatchObject({ rows_succeeded: 25, rows_failed: 1, retries: 1, rows_queued: 26 });
    expect(retried.summary?.by_error_code).toEqual({ rc_7103: 1 });
    const history = await readCsvFile(retried.files!.history);
    expect(history).toHaveLength(5);
    expect(history.every((h) => h.status === 'failed' && h.reason === 'rc_7101')).toBe(true);
    const failed = await readCsvFile(retried.files!.failed);
    expect(failed.map((f) => f.app_user_id)).toEqual(['bad-1']);

    // --include-permanent sends the invalid receipt again; it fails again, with one more history entry.
    const again = await retryRun({ config, logger, runId: 'retry', includePermanent: true, outDir: join(fx.dir, 'r2') });
    expect(again.requeued).toBe(1);
    expect(again.summary).toMatchObject({ rows_succeeded: 25, rows_failed: 1, retries: 2 });
    expect(await readCsvFile(again.files!.history)).toHaveLength(6);

    // Nothing transient is left: a plain retry finds nothing to do.
    const none = await retryRun({ config, logger, runId: 'retry', outDir: join(fx.dir, 'r3') });
    expect(none.requeued).toBe(0);
  });

  it('holds a token another user has, in the run and across runs, names both sides in conflicts.csv, and exits 1', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const first = await writeCsv(fx.dir, 'shared.csv', HEADER, [
      ['ios', 'alice', token(400)],
      ['ios', 'bob', token(400)], // alice's receipt under another user: held
      ['ios', 'carol', token(401)],
      ['ios', 'alice', token(400)], // a duplicate of line 2, not a conflict
    ]);
    const sentBefore = fx.sandbox.stats().receiptPosts.total;
    const one = await runMigration({ config, logger, sources: [first], runId: 'shared-1', outDir: join(fx.dir, 's1') });
    expect(one.exitCode).toBe(1);
    expect(one.summary).toMatchObject({ rows_read: 4, rows_queued: 2, rows_succeeded: 2, rows_duplicate: 1, rows_conflict: 1, rows_held: 1, rows_pending: 0, status: 'complete' });
    expect(fx.sandbox.stats().receiptPosts.total - sentBefore).toBe(2);
    expect(await readCsvFile(one.files.conflicts)).toEqual([
      expect.objectContaining({
        source: first,
        line: '3',
        app_user_id: 'bob',
        fingerprint: expect.any(String),
        action: 'held',
        other_run: 'shared-1',
        other_source: first,
        other_line: '2',
        other_app_user_id: 'alice',
      }),
    ]);
    // every row read ends in exactly one class
    const s = one.summary;
    expect(s.rows_rejected + s.rows_duplicate + s.already_migrated + s.rows_held + s.rows_queued).toBe(s.rows_read);

    // The next night, carol's receipt comes under mallory: migrated for carol by shared-1, so held.
    const second = await writeCsv(fx.dir, 'shared-2.csv', HEADER, [
      ['ios', 'mallory', token(401)],
      ['ios', 'dave', token(402)],
    ]);
    const two = await runMigration({ config, logger, sources: [second], runId: 'shared-2', outDir: join(fx.dir, 's2') });
    expect(two.exitCode).toBe(1);
    expect(two.summary).toMatchObject({ rows_read: 2, rows_queued: 1, rows_succeeded: 1, rows_held: 1 });
    expect(fx.sandbox.stats().receiptPosts.total - sentBefore).toBe(3);
    expect(await readCsvFile(two.files.conflicts)).toEqual([
      expect.objectContaining({
        source: second,
        line: '2',
        app_user_id: 'mallory',
        fingerprint: expect.any(String),
        action: 'held',
        other_run: 'shared-1',
        other_source: first,
        other_line: '4',
        other_app_user_id: 'carol',
      }),
    ]);
  });

  it("sends a changed row again as updated and skips an unchanged one (RevenueCat's sample pair: attributes added)", async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const plain = Array.from({ length: 5 }, (_, i) => ['ios', `sample-${i}`, token(500 + i)]);
    const day1 = await writeCsv(fx.dir, 'sample.csv', HEADER, plain);
    const day2 = await writeCsv(
      fx.dir,
      'sample-attributes.csv',
      [...HEADER, '$email', '$idfa', 'favorite_color'],
      plain.map((r, i) => [...r, `sample-${i}@example.com`, `00000000-0000-0000-0000-00000000000${i}`, i % 2 ? 'blue' : 'green']),
    );
    const sentBefore = fx.sandbox.stats().receiptPosts.total;
    const first = await runMigration({ config, logger, sources: [day1], runId: 'sample-1', outDir: join(fx.dir, 'p1') });
    expect(first.summary).toMatchObject({ rows_succeeded: 5, rows_updated: 0 });

    const columns = { attributes: ['favorite_color'] };
    const second = await runMigration({ config, logger, sources: [day2], runId: 'sample-2', outDir: join(fx.dir, 'p2'), columns });
    expect(second.exitCode).toBe(0);
    expect(second.summary).toMatchObject({ rows_read: 5, already_migrated: 0, rows_updated: 5, rows_queued: 5, rows_succeeded: 5 });
    expect(fx.sandbox.stats().receiptPosts.total - sentBefore).toBe(10);

    // The same file again: nothing changed since, so nothing is sent; one row edited: only it goes.
    const third = await runMigration({ config, logger, sources: [day2], runId: 'sample-3', outDir: join(fx.dir, 'p3'), columns });
    expect(third.summary).toMatchObject({ rows_read: 5, already_migrated: 5, rows_updated: 0, rows_queued: 0 });
    const edited = await writeCsv(
      fx.dir,
      'sample-edited.csv',
      [...HEADER, '$email', '$idfa', 'favorite_color'],
      plain.map((r, i) => [...r, `sample-${i}@example.com`, `00000000-0000-0000-0000-00000000000${i}`, i === 3 ? 'red' : i % 2 ? 'blue' : 'green']),
    );
    const fourth = await runMigration({ config, logger, sources: [edited], runId: 'sample-4', outDir: join(fx.dir, 'p4'), columns });
    expect(fourth.summary).toMatchObject({ rows_read: 5, already_migrated: 4, rows_updated: 1, rows_succeeded: 1 });
    expect(fx.sandbox.stats().receiptPosts.total - sentBefore).toBe(11);
  });

  it('tells transient reasons from permanent ones', () => {
    expect(isTransientFailure({ reason: 'rc_7101', code: 7101, http_status: 500 })).toBe(true);
    expect(isTransientFailure({ reason: 'rc_7229', code: 7229, http_status: 500 })).toBe(true);
    expect(isTransientFailure({ reason: 'timeout' })).toBe(true);
    expect(isTransientFailure({ reason: 'http_503', http_status: 503 })).toBe(true);
    expect(isTransientFailure({ reason: 'rc_7103', code: 7103, http_status: 400 })).toBe(false);
    expect(isTransientFailure({ reason: 'transferred', http_status: 200 })).toBe(false);
    expect(isTransientFailure({ reason: 'rc_7102', code: 7102, http_status: 400 })).toBe(false);
  });
});
