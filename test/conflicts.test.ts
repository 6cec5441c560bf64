// One fetch token under two app_user_ids: the later row is held and listed in conflicts.csv (both sides, the
// token masked), within a run and across runs; --on-conflict send sends it anyway. The progress bar shows held rows.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runMigration } from '../src/commands/run.js';
import { silentLogger } from '../src/logger.js';
import { runProgressBar } from '../src/progress.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token'];

describe('token conflicts', () => {
  const fx = pipelineFixture('conflicts');
  const logger = silentLogger();
  const posts = (user: string, fetchToken: string): number => fx.sandbox.receiptPostCount(user, fetchToken).posts;

  it('holds the later row within a run by default, and sends it with --on-conflict send', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const rows = [
      ['ios', 'ann', token(10)],
      ['ios', 'ben', token(11)],
      ['ios', 'cat', token(10)], // ann's token
    ];
    const held = await runMigration({ config, logger, sources: [await writeCsv(fx.dir, 'held.csv', HEADER, rows)], runId: 'conf-held', outDir: join(fx.dir, 'held') });
    expect(held.exitCode).toBe(1);
    expect(held.summary).toMatchObject({ status: 'complete', rows_succeeded: 2, rows_conflict: 1, rows_held: 1, rows_pending: 0 });
    expect(posts('cat', token(10))).toBe(0);
    const listed = await readCsvFile(held.files.conflicts);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ line: '4', app_user_id: 'cat', token: 'tok0…6789', action: 'held', other_run: 'conf-held', other_line: '2', other_app_user_id: 'ann' });
    expect(await readFile(held.files.conflicts, 'utf8')).not.toContain(token(10));
    const summary = JSON.parse(await readFile(held.files.summary, 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ rows_held: 1, rows_conflict: 1 });

    const sendRows = [
      ['ios', 'dan', token(20)],
      ['ios', 'eve', token(20)], // dan's token, sent anyway
    ];
    const sent = await runMigration({
      config,
      logger,
      sources: [await writeCsv(fx.dir, 'send.csv', HEADER, sendRows)],
      runId: 'conf-send',
      onConflict: 'send',
      outDir: join(fx.dir, 'send'),
    });
    expect(sent.summary).toMatchObject({ rows_conflict: 1, rows_held: 0, rows_queued: 2 });
    expect(posts('dan', token(20))).toBe(1);
    expect(posts('eve', token(20))).toBe(1);
    expect((await readCsvFile(sent.files.conflicts))[0]).toMatchObject({ app_user_id: 'eve', action: 'sent', other_app_user_id: 'dan' });
  });

  it('holds a token an earlier run migrated for another user; --on-conflict send sends it', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    await runMigration({ config, logger, sources: [await writeCsv(fx.dir, 'night-1.csv', HEADER, [['ios', 'fay', token(30)]])], runId: 'conf-n1', outDir: join(fx.dir, 'n1') });
    const night2 = await writeCsv(fx.dir, 'night-2.csv', HEADER, [
      ['ios', 'gus', token(30)],
      ['ios', 'hal', token(31)],
    ]);
    const held = await runMigration({ config, logger, sources: [night2], runId: 'conf-n2', outDir: join(fx.dir, 'n2') });
    expect(held.exitCode).toBe(1);
    expect(held.summary).toMatchObject({ rows_succeeded: 1, rows_held: 1 });
    expect(posts('gus', token(30))).toBe(0);
    expect((await readCsvFile(held.files.conflicts))[0]).toMatchObject({
      source: night2,
      line: '2',
      app_user_id: 'gus',
      token: 'tok0…6789',
      action: 'held',
      other_run: 'conf-n1',
      other_line: '2',
      other_app_user_id: 'fay',
    });

    const sent = await runMigration({ config, logger, sources: [night2], runId: 'conf-n3', onConflict: 'send', outDir: join(fx.dir, 'n3') });
    expect(sent.summary).toMatchObject({ rows_conflict: 1, rows_held: 0, already_migrated: 1 });
    expect(posts('gus', token(30))).toBe(1);
  });
});

describe('the progress bar', () => {
  it('shows held rows', async () => {
    const out = new PassThrough();
    let screen = '';
    out.on('data', (d: Buffer) => (screen += d.toString()));
    const tty = Object.assign(out, { isTTY: true, columns: 200, rows: 40, cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true });
    const bar = runProgressBar(tty as unknown as NodeJS.WriteStream);
    const counts = { rows_read: 10, rows_queued: 8, requests_sent: 8, rows_succeeded: 8, rows_failed: 0, rows_rejected: 0, rows_held: 2 };
    bar.onState(counts);
    bar.log('a warning above the bar');
    bar.stop();
    await new Promise((r) => setImmediate(r));
    expect(screen).toContain('held 2');
    expect(screen).toContain('a warning above the bar');
  });
});
