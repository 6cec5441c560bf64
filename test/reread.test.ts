// A failed row's input is read again from its source (ingest/reread.ts), not kept in Redis: failed.csv gets the
// exact cells the run read (byte for byte what the report was before), `retry` re-reads and sends failed rows from
// a CSV, a .gz and an S3 object, and a source changed since the run read it is refused, by name. superseded.csv
// reads its rows' users the same way (the ledger keeps a superseded row's place and its carrier's only).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { appendFile, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { runMigration } from '../src/commands/run.js';
import { reportRun } from '../src/commands/report.js';
import { retryRun } from '../src/commands/retry.js';
import { closeDefaultS3Client } from '../src/ingest/s3.js';
import { SourceUnavailableError } from '../src/ingest/reread.js';
import { RunLedger } from '../src/ledger/runLedger.js';
import { silentLogger } from '../src/logger.js';
import { openRedis } from '../src/redis/connection.js';
import { readCsvFile, testConfig, token } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { redisUrl } from './support/redis.js';
import { startS3rver } from './support/s3rver.js';
import { appleSigner } from './support/appleReceipts.js';
import { USER_NOT_READ_BACK } from '../src/reports/writeReport.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');

/**
 * failed.csv of the fixture below as the report wrote it before failed rows' inputs left Redis (commit 5544020,
 * which kept each failed row's cells in the ledger): `{DIR}` is the fixture's directory. The cells are those of the
 * file (quotes, a comma, a line break, spaces, a formula escaped with an apostrophe, a column named 2026 first as
 * JavaScript orders it); the .gz source has no platform column, so its rows take the platform of --platform.
 */
const FAILED_CSV_BEFORE =
  '2026,platform,app_user_id,fetch_token,note,remark,receipt,$email,error_source,error_line,error_reason,error_code,error_http_status,error_message,error_attempts\n' +
  '"1,5",ios,u-bad1,tok0000002abcdefghijklmnopqrstuvwxyz0123456789-sbx-invalid,"\'=HYPERLINK(""http://x"")","say ""hi""",,,{DIR}/a.csv,3,rc_7103,7103,400,The receipt is not valid.,1\n' +
  ' padded ,ios,u-bad2,tok0000003abcdefghijklmnopqrstuvwxyz0123456789-sbx-invalid,"multi\nline",€ café,,,{DIR}/a.csv,4,rc_7103,7103,400,The receipt is not valid.,1\n' +
  ',ios,u-b1,,,,tok0000004abcdefghijklmnopqrstuvwxyz0123456789-sbx-invalid,a@b.c,{DIR}/b.csv.gz,2,rc_7103,7103,400,The receipt is not valid.,1\n' +
  ",ios,u-b3,,,,tok0000006abcdefghijklmnopqrstuvwxyz0123456789-sbx-invalid,'+1 555,{DIR}/b.csv.gz,4,rc_7103,7103,400,The receipt is not valid.,1\n";

const FILE_A = [
  'platform,app_user_id,fetch_token,note,2026,remark',
  `ios,u-ok,${token(1)},plain,x,`,
  `ios,u-bad1,${token(2, 'invalid')},"=HYPERLINK(""http://x"")","1,5","say ""hi"""`,
  `ios,u-bad2,${token(3, 'invalid')},"multi`,
  `line", padded ,€ café`,
  '',
].join('\r\n');
const FILE_B = ['app_user_id,receipt,$email', `u-b1,${token(4, 'invalid')},a@b.c`, `u-b2,${token(5)},`, `u-b3,${token(6, 'invalid')},+1 555`, ''].join('\n');

const HEADER = 'platform,app_user_id,fetch_token';

describe('failed rows read again from their sources', () => {
  const fx = pipelineFixture('reread');
  let s3: { port: number; child: ChildProcess };
  let client: S3Client;
  const put = (Key: string, Body: string | Buffer): Promise<unknown> => client.send(new PutObjectCommand({ Bucket: 'exports', Key, Body }));

  beforeAll(async () => {
    s3 = await startS3rver(join(fx.dir, 's3'));
    // The S3 client reads its credentials the SDK's way, as in production; endpoint and path style are config keys.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' });
    client = new S3Client({
      endpoint: `http://127.0.0.1:${s3.port}`,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    await client.send(new CreateBucketCommand({ Bucket: 'exports' }));
  });
  afterAll(() => {
    client?.destroy();
    closeDefaultS3Client();
    s3?.child.stdin?.end();
  });

  const config = (overrides: Record<string, unknown> = {}): ReturnType<typeof testConfig> =>
    testConfig(fx.prefix, fx.sandbox.url, { maxAttempts: 2, s3Endpoint: `http://127.0.0.1:${s3.port}`, s3ForcePathStyle: true, s3Region: 'us-east-1', ...overrides });

  it('writes failed.csv with the exact input cells of every failed row, byte for byte as before', async () => {
    const a = join(fx.dir, 'a.csv');
    const b = join(fx.dir, 'b.csv.gz');
    await writeFile(a, FILE_A);
    await writeFile(b, gzipSync(FILE_B));
    const run = await runMigration({ config: config(), logger: silentLogger(), sources: [a, b], runId: 'exact', outDir: join(fx.dir, 'exact'), columns: { platform: 'ios' } });
    expect(run.summary).toMatchObject({ rows_succeeded: 2, rows_failed: 4 });
    expect(await readFile(run.files.failed, 'utf8')).toBe(FAILED_CSV_BEFORE.split('{DIR}').join(fx.dir));

    // The cells come from the file, not from Redis: with the file gone, the rows keep their error columns only,
    // and the report says which source could not be read and what to do.
    await writeFile(a, FILE_A.replace('u-ok', 'u-OK'));
    const again = await reportRun({ config: config(), runId: 'exact', outDir: join(fx.dir, 'exact-changed') });
    const failed = await readCsvFile(again.files.failed);
    expect(failed.map((r) => [r.error_source, r.error_line, r.error_reason, r.app_user_id, r.fetch_token])).toEqual([
      [a, '3', 'rc_7103', '', ''],
      [a, '4', 'rc_7103', '', ''],
      [b, '2', 'rc_7103', 'u-b1', ''],
      [b, '4', 'rc_7103', 'u-b3', ''],
    ]);
    const summary = JSON.parse(await readFile(again.files.summary, 'utf8')) as { warnings?: string[] };
    expect(summary.warnings).toEqual([
      expect.stringMatching(new RegExp(`2 of 2 failed rows of ${a} without their input cells.*changed since the run read it.*restore the file`, 'is')),
    ]);
  });

  it("reads a shared token's second user's row again too (its ledger key carries a variant byte)", async () => {
    const src = join(fx.dir, 'shared.csv');
    const shared = token(7, 'invalid');
    await writeFile(src, [HEADER, `ios,u-first,${shared}`, `ios,u-second,${shared}`, ''].join('\n'));
    const run = await runMigration({ config: config(), logger: silentLogger(), sources: [src], runId: 'shared', outDir: join(fx.dir, 'shared'), onConflict: 'send' });
    expect(run.summary).toMatchObject({ rows_failed: 2 });
    const failed = await readCsvFile(run.files.failed);
    expect(failed.map((r) => [r.error_line, r.app_user_id, r.fetch_token])).toEqual([
      ['2', 'u-first', shared],
      ['3', 'u-second', shared],
    ]);
    const summary = JSON.parse(await readFile(run.files.summary, 'utf8')) as { warnings?: string[] };
    expect(summary.warnings ?? []).toEqual([]);
  });

  it('retry reads the failed rows again from a CSV, a .gz and an S3 object and sends them', async () => {
    // The store fails these three times: two attempts in the run are not enough, two more in the retry are.
    const csv = join(fx.dir, 'flaky.csv');
    const gz = join(fx.dir, 'flaky.csv.gz');
    await writeFile(csv, `${HEADER}\nios,c-ok,${token(10)}\nios,c-flaky,${token(11, 'flaky3')}\n`);
    await writeFile(gz, gzipSync(`${HEADER}\nios,g-flaky,${token(12, 'flaky3')}\nios,g-ok,${token(13)}\n`));
    await put('retry/s.csv', `app_user_id,fetch_token,platform\ns-flaky,${token(14, 'flaky3')},ios\ns-ok,${token(15)},ios\n`);
    const sources = [csv, gz, 's3://exports/retry/'];
    const run = await runMigration({ config: config(), logger: silentLogger(), sources, runId: 'again', outDir: join(fx.dir, 'again-0') });
    expect(run.summary).toMatchObject({ rows_succeeded: 3, rows_failed: 3 });
    expect(run.summary.by_error_code).toEqual({ rc_7101: 3 });
    const before = fx.sandbox.stats().receiptPosts.total;

    const retried = await retryRun({ config: config(), logger: silentLogger(), runId: 'again', outDir: join(fx.dir, 'again-1') });
    expect(retried.requeued).toBe(3);
    expect(retried.exitCode).toBe(0);
    expect(retried.summary).toMatchObject({ rows_succeeded: 6, rows_failed: 0, retries: 1 });
    // Each retried row was sent twice more (one more failure, then the success), with the token the file holds.
    expect(fx.sandbox.stats().receiptPosts.total - before).toBe(6);
    const succeeded = await readCsvFile(retried.files!.succeeded);
    expect(succeeded.filter((r) => r.app_user_id?.endsWith('-flaky')).map((r) => `${r.source}#${r.line}`)).toEqual(
      expect.arrayContaining([`${csv}#3`, `${gz}#2`, 's3://exports/retry/s.csv#2']),
    );
  });

  it('refuses a retry when a source changed since the run read it, naming the source, and queues nothing', async () => {
    const csv = join(fx.dir, 'changing.csv');
    await writeFile(csv, `${HEADER}\nios,x-flaky,${token(20, 'flaky9')}\nios,x-ok,${token(21)}\n`);
    await put('changing/o.csv', `${HEADER}\nios,o-flaky,${token(22, 'flaky9')}\n`);
    const run = await runMigration({ config: config(), logger: silentLogger(), sources: [csv, 's3://exports/changing/'], runId: 'changed', outDir: join(fx.dir, 'changed-0') });
    expect(run.summary).toMatchObject({ rows_succeeded: 1, rows_failed: 2 });
    const redis = openRedis(redisUrl());
    const ledger = new RunLedger(redis, fx.prefix, 'changed');
    try {
      // A line appended: the size differs.
      await appendFile(csv, `ios,x-new,${token(23)}\n`);
      const appended = retryRun({ config: config(), logger: silentLogger(), runId: 'changed', outDir: join(fx.dir, 'changed-1') });
      await expect(appended).rejects.toThrow(SourceUnavailableError);
      await expect(appended).rejects.toThrow(new RegExp(`retry refused, nothing was queued: source ${csv} changed since the run read it: it is \\d+ bytes long, and was \\d+`));
      expect(await ledger.state()).toMatchObject({ rows_failed: 2, rows_pending: 0, retries: 0 });

      // The same bytes again, but touched: the modification time differs.
      await writeFile(csv, `${HEADER}\nios,x-flaky,${token(20, 'flaky9')}\nios,x-ok,${token(21)}\n`);
      await expect(retryRun({ config: config(), logger: silentLogger(), runId: 'changed', wait: false })).rejects.toThrow(
        new RegExp(`source ${csv} changed since the run read it: it was modified at`),
      );

      // Gone from this machine: the message says where it was looked for and what to do.
      await rm(csv);
      await expect(retryRun({ config: config(), logger: silentLogger(), runId: 'changed', wait: false })).rejects.toThrow(
        `source ${csv} cannot be read again: there is no file ${csv} on this machine. Run the command on the machine that ran the ingest`,
      );

      // The S3 object rewritten (another ETag): refused by its URL, from the CLI too (exit 2, the message on stderr).
      await put('changing/o.csv', `${HEADER}\nios,o-flaky,${token(24, 'flaky9')}\n`);
      const cli = spawnSync(process.execPath, [CLI, 'retry', '--run-id', 'changed', '--no-wait'], {
        env: {
          PATH: process.env.PATH ?? '',
          REDIS_URL: redisUrl(),
          RC_MIGRATE_PREFIX: fx.prefix,
          S3_ENDPOINT: `http://127.0.0.1:${s3.port}`,
          S3_FORCE_PATH_STYLE: 'true',
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'S3RVER',
          AWS_SECRET_ACCESS_KEY: 'S3RVER',
        },
        encoding: 'utf8',
      });
      expect(cli.status).toBe(2);
      expect(cli.stderr).toContain('s3://exports/changing/o.csv changed since the run read it: its ETag is');
      expect(cli.stderr).toContain(csv);
      expect(await ledger.state()).toMatchObject({ rows_failed: 2, retries: 0 });
    } finally {
      redis.disconnect();
    }
  });

  it('superseded.csv reads its users again from a CSV, a .gz and an S3 object; a source changed or gone still lists its rows, with a marker and one warning', async () => {
    const signer = await appleSigner();
    const DAY = 86_400_000;
    const T0 = Date.UTC(2025, 0, 1);
    // A user's receipt on `day` holding `renewals` monthly renewals of a subscription of its own (transaction ids
    // from `base`: the purchase index remembers purchases across the file's tests).
    const receipt = (day: number, renewals: number, base: number): Promise<string> =>
      signer.receipt({
        environment: 'Production',
        bundleId: 'com.example.app',
        creationMs: T0 + day * DAY,
        purchases: Array.from({ length: renewals }, (_, i) => ({
          productId: 'pro_monthly',
          transactionId: String(base + i),
          originalTransactionId: String(base),
          purchaseMs: T0 + i * 30 * DAY,
          expiresMs: T0 + (i + 1) * 30 * DAY,
        })),
      });
    const ann = 'Ann, "the first"';
    const bob = '9B2F6C1E-4A4D-4C47-8A0E-2F1D3C4B5A69';
    const cat = `cat-${'x'.repeat(80)}`;
    const row = (user: string, fetchToken: string): string => `ios,"${user.replace(/"/g, '""')}",${fetchToken}`;
    const csv = join(fx.dir, 'sup.csv');
    const gz = join(fx.dir, 'sup.csv.gz');
    const s3Source = 's3://exports/sup/s.csv';
    await writeFile(csv, [HEADER, row(ann, await receipt(1, 1, 700_000)), row(ann, await receipt(61, 3, 700_000)), ''].join('\n'));
    // ann's receipt of day 31 here is carried by her newer one in the CSV
    await writeFile(
      gz,
      gzipSync([HEADER, row(bob, await receipt(1, 1, 710_000)), row(bob, await receipt(31, 2, 710_000)), row(ann, await receipt(31, 2, 700_000)), ''].join('\n')),
    );
    const s3Text = [HEADER, row(cat, await receipt(1, 1, 720_000)), row(cat, await receipt(31, 2, 720_000)), ''].join('\n');
    await put('sup/s.csv', s3Text);
    const run = await runMigration({ config: config(), logger: silentLogger(), sources: [csv, gz, 's3://exports/sup/'], runId: 'sup', outDir: join(fx.dir, 'sup-0') });
    expect(run.summary).toMatchObject({ rows_read: 7, rows_succeeded: 3, rows_superseded: 4, rows_failed: 0 });
    const listed = (rows: Record<string, string>[]): string[][] => rows.map((r) => [r.source, r.line, r.app_user_id, r.superseded_by_source, r.superseded_by_line] as string[]);
    expect(listed(await readCsvFile(run.files.superseded))).toEqual([
      [csv, '2', ann, csv, '3'],
      [gz, '2', bob, gz, '3'],
      [gz, '4', ann, csv, '3'],
      [s3Source, '2', cat, s3Source, '3'],
    ]);
    expect((JSON.parse(await readFile(run.files.summary, 'utf8')) as { warnings?: string[] }).warnings).toBeUndefined();

    // The .gz gone and the S3 object rewritten (another ETag): their rows are listed all the same, by place and
    // carrier, with the marker for a user; the report says why once per source. The CSV's row keeps its user.
    await rm(gz);
    await put('sup/s.csv', `${s3Text}ios,dan,${token(40)}\n`);
    const again = await reportRun({ config: config(), runId: 'sup', outDir: join(fx.dir, 'sup-1') });
    expect(again.summary).toMatchObject({ rows_superseded: 4 });
    expect(listed(await readCsvFile(again.files.superseded))).toEqual([
      [csv, '2', ann, csv, '3'],
      [gz, '2', USER_NOT_READ_BACK, gz, '3'],
      [gz, '4', USER_NOT_READ_BACK, csv, '3'],
      [s3Source, '2', USER_NOT_READ_BACK, s3Source, '3'],
    ]);
    const summary = JSON.parse(await readFile(again.files.summary, 'utf8')) as { warnings?: string[] };
    expect(summary.warnings).toEqual([
      `superseded.csv: 2 of 2 superseded rows of ${gz} without their App User ID ("${USER_NOT_READ_BACK}" instead): source ${gz} cannot be read again: there is no file ${gz} on this machine. Run the command on the machine that ran the ingest, or restore the file the run read (same content and modification time) at that path`,
      expect.stringMatching(
        new RegExp(`^superseded.csv: 1 of 1 superseded row of ${s3Source} without their App User ID .*: source ${s3Source} changed since the run read it: its ETag is`),
      ),
    ]);
  });

  it('stops a retry at a row whose receipt differs though size and mtime are the same', async () => {
    const csv = join(fx.dir, 'forged.csv');
    const text = `${HEADER}\nios,f-flaky,${token(30, 'flaky9')}\n`;
    // A whole second, which utimes can set again exactly.
    const at = 1_700_000_000;
    await writeFile(csv, text);
    await utimes(csv, at, at);
    const run = await runMigration({ config: config(), logger: silentLogger(), sources: [csv], runId: 'forged', outDir: join(fx.dir, 'forged-0') });
    expect(run.summary).toMatchObject({ rows_failed: 1 });
    await writeFile(csv, text.replace(token(30, 'flaky9'), token(31, 'flaky9')));
    await utimes(csv, at, at);
    expect((await stat(csv)).mtimeMs).toBe(at * 1000);
    await expect(retryRun({ config: config(), logger: silentLogger(), runId: 'forged', wait: false })).rejects.toThrow(
      `retry stopped after queueing 0 rows again: ${csv} line 2: holds another receipt than the run read there`,
    );
  });
});
