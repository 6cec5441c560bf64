// `run --limit N`: a canary of N rows spread over the platforms, then the same run without the limit sends the
// rest, and the sandbox sees every receipt once. Only rows actually queued count towards N.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMigration } from '../src/commands/run.js';
import { silentLogger } from '../src/logger.js';
import { CanarySelector, shareOut } from '../src/session/canary.js';
import type { ReceiptJobData } from '../src/types.js';
import { readCsvFile, testConfig, token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';

const HEADER = ['platform', 'app_user_id', 'fetch_token', 'product_id'];
type Row = [string, string, string, string];

const ios = (i: number): Row => ['ios', `c-ios-${i}`, token(1000 + i), ''];
const android = (i: number): Row => ['android', `c-and-${i}`, token(2000 + i), 'com.example.monthly'];
const stripe = (i: number): Row => ['stripe', `c-str-${i}`, `sub_${token(3000 + i)}`, ''];
const count = (n: number, row: (i: number) => Row): Row[] => Array.from({ length: n }, (_, i) => row(i));

/** Rows of the sandbox's POSTs per (user, token) pair, for the tokens of these rows. */
function postsOf(fx: ReturnType<typeof pipelineFixture>, rows: Row[]): number[] {
  const byPair = new Map(fx.sandbox.receiptPostCounts().map((c) => [`${c.app_user_id}\n${c.fetch_token}`, c.posts]));
  return rows.map((r) => byPair.get(`${r[1]}\n${r[2]}`) ?? 0);
}

describe('run --limit: a canary, then the rest', () => {
  const fx = pipelineFixture('canary');
  const logger = silentLogger();

  it('sends 50 rows spread over the platforms of a platform-sorted file, then the rest, no row twice', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url, { ingestChunkSize: 16 });
    // An earlier run migrated the first three iOS rows: the canary skips them without counting them.
    const earlier = await writeCsv(fx.dir, 'earlier.csv', HEADER, count(3, ios));
    const before = await runMigration({ config, logger, sources: [earlier], runId: 'canary-earlier', outDir: join(fx.dir, 'earlier') });
    expect(before.summary.rows_succeeded).toBe(3);

    // Sorted by platform, as exports often are: 120 iOS rows (with a duplicate, a held conflict and a rejected row
    // among the first), then 50 Android, then 30 Stripe.
    const iosRows = count(120, ios);
    const file: Row[] = [
      ...iosRows.slice(0, 5),
      iosRows[4] as Row, // duplicate of line 6
      ['ios', 'c-intruder', token(1000 + 3), ''], // the token of line 5, another user: held
      ['ios', 'null', token(1999), ''], // a blocklisted App User ID: rejected
      ...iosRows.slice(5),
      ...count(50, android),
      ...count(30, stripe),
    ];
    const source = await writeCsv(fx.dir, 'sorted.csv', HEADER, file);
    const postsBefore = fx.sandbox.stats().receiptPosts.total;

    const canary = await runMigration({ config, logger, sources: [source], runId: 'canary-1', limit: 50, outDir: join(fx.dir, 'c1') });
    expect(canary.exitCode).toBe(1); // the rejected row and the held conflict it read: someone must look at them
    expect(canary.summary.status).toBe('partial');
    expect(canary.summary.canary).toEqual({ limit: 50, sent: 50 });
    expect(canary.summary).toMatchObject({ rows_succeeded: 50, rows_failed: 0, rows_pending: 0, already_migrated: 3, rows_duplicate: 1, rows_held: 1, rows_rejected: 1 });
    expect(fx.sandbox.stats().receiptPosts.total - postsBefore).toBe(50);
    const html = await readFile(canary.files.html, 'utf8');
    expect(html).toContain('class="badge badge-partial">canary</span>');
    expect(html).toContain('Canary: 50 rows sent (limit 50)');
    const sent = await readCsvFile(canary.files.succeeded);
    const byPlatform = (platform: string): number => sent.filter((r) => r.platform === platform).length;
    // Round-robin over the platforms in the order they first appear: 17, 17, 16.
    expect([byPlatform('ios'), byPlatform('android'), byPlatform('stripe')]).toEqual([17, 17, 16]);
    // Each platform's rows were taken in file order: the first 17 sendable iOS rows (the first three were migrated
    // earlier), the first 17 Android ones (succeeded.csv lists them in ledger order).
    const users = (platform: string): string[] =>
      sent
        .filter((r) => r.platform === platform)
        .map((r) => r.app_user_id as string)
        .sort();
    expect(users('ios')).toEqual(
      iosRows
        .slice(3, 20)
        .map((r) => r[1])
        .sort(),
    );
    expect(users('android')).toEqual(
      count(17, android)
        .map((r) => r[1])
        .sort(),
    );

    // The same command without --limit sends the rest; nothing is sent twice.
    const rest = await runMigration({ config, logger, sources: [source], runId: 'canary-1', outDir: join(fx.dir, 'c2') });
    expect(rest.summary.status).toBe('complete');
    expect(rest.summary.canary).toBeUndefined();
    expect(rest.exitCode).toBe(1); // still the rejected row and the held conflict
    const s = rest.summary;
    expect(s).toMatchObject({ rows_read: file.length, rows_succeeded: 200 - 3, already_migrated: 3, rows_duplicate: 1, rows_held: 1, rows_rejected: 1, rows_pending: 0 });
    expect(s.rows_rejected + s.rows_duplicate + s.already_migrated + s.rows_held + s.rows_queued).toBe(s.rows_read);
    expect(fx.sandbox.stats().receiptPosts.total - postsBefore).toBe(200 - 3);
    // Every row of the file posted exactly once over the three runs (the earlier run's three included).
    const all = [...iosRows, ...count(50, android), ...count(30, stripe)];
    expect(postsOf(fx, all).every((n) => n === 1)).toBe(true);
    expect(postsOf(fx, [['ios', 'c-intruder', token(1003), '']])).toEqual([0]);
  });

  it('takes from every file of a run, without reading the whole of the first, and exits 0 when its rows succeeded', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const first = await writeCsv(
      fx.dir,
      'ios-only.csv',
      HEADER,
      count(400, (i) => ['ios', `f-ios-${i}`, token(5000 + i), '']),
    );
    const second = await writeCsv(
      fx.dir,
      'android-only.csv',
      HEADER,
      count(400, (i) => ['android', `f-and-${i}`, token(6000 + i), 'com.example.monthly']),
    );
    const canary = await runMigration({ config, logger, sources: [first, second], runId: 'canary-2', limit: 10, outDir: join(fx.dir, 'c3') });
    expect(canary.exitCode).toBe(0);
    expect(canary.summary).toMatchObject({ status: 'partial', canary: { limit: 10, sent: 10 }, rows_succeeded: 10 });
    const sent = await readCsvFile(canary.files.succeeded);
    expect(sent.filter((r) => r.platform === 'ios')).toHaveLength(5);
    expect(sent.filter((r) => r.platform === 'android')).toHaveLength(5);
    // It left the first file after its five rows: only they and the second file's first five were read.
    expect(canary.summary.rows_read).toBe(10);

    const rest = await runMigration({ config, logger, sources: [first, second], runId: 'canary-2', outDir: join(fx.dir, 'c4') });
    expect(rest.exitCode).toBe(0);
    expect(rest.summary).toMatchObject({ status: 'complete', rows_read: 800, rows_succeeded: 800 });
  });

  it('a limit larger than the sources is a whole run', async () => {
    const config = testConfig(fx.prefix, fx.sandbox.url);
    const small = await writeCsv(
      fx.dir,
      'small.csv',
      HEADER,
      count(7, (i) => ['ios', `s-${i}`, token(7000 + i), '']),
    );
    const run = await runMigration({ config, logger, sources: [small], runId: 'canary-3', limit: 50, outDir: join(fx.dir, 'c5') });
    expect(run.exitCode).toBe(0);
    expect(run.summary.status).toBe('complete');
    expect(run.summary.canary).toBeUndefined();
    expect(run.summary.rows_succeeded).toBe(7);
  });
});

describe('canary shares and selection', () => {
  it('shares the limit out round-robin, none getting more than it has', () => {
    expect(
      shareOut(
        50,
        new Map([
          ['ios', 120],
          ['android', 50],
          ['stripe', 30],
        ] as const),
      ),
    ).toEqual(
      new Map([
        ['ios', 17],
        ['android', 17],
        ['stripe', 16],
      ]),
    );
    expect(
      shareOut(
        10,
        new Map([
          ['ios', 100],
          ['android', 2],
        ] as const),
      ),
    ).toEqual(
      new Map([
        ['ios', 8],
        ['android', 2],
      ]),
    );
    expect(shareOut(10, new Map([['ios', 3]] as const))).toEqual(new Map([['ios', 3]]));
  });

  it('never takes more than it may still queue, and waits for admissions before leaving a row it may need', () => {
    const row = (platform: 'ios' | 'android', line: number): ReceiptJobData => ({
      run: 'r',
      fp: String(line),
      src: 'f.csv',
      line,
      platform,
      body: { app_user_id: 'u', fetch_token: 't' },
      input: {},
    });
    const selector = new CanarySelector(
      2,
      new Map([
        ['ios', 1],
        ['android', 1],
      ] as const),
      new Map([['f.csv', new Set(['ios', 'android'] as const)]]),
    );
    expect(selector.offer(row('ios', 2))).toBe('take');
    expect(selector.offer(row('ios', 3))).toBe('wait'); // its share is taken, but not yet known to be queued
    selector.admitted([row('ios', 2)], [{ kind: 'migrated' }]);
    expect(selector.offer(row('ios', 3))).toBe('take'); // the first was already migrated: this one is needed
    selector.admitted([row('ios', 3)], [{ kind: 'new', fp: '3' }]);
    expect(selector.offer(row('ios', 4))).toBe('leave');
    expect(selector.offer(row('android', 5))).toBe('take');
    expect(selector.offer(row('android', 6))).toBe('wait');
    selector.admitted([row('android', 5)], [{ kind: 'new', fp: '5' }]);
    expect(selector.offer(row('android', 6))).toBe('stop');
    expect(selector.queued).toBe(2);
  });
});
