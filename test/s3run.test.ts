// A whole run whose source is an S3 prefix: several objects (one gzipped, one empty, one not a CSV), read from
// a real S3-protocol server on loopback, sent to the fx.sandbox, with object keys and lines in the report.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { runMigration } from '../src/commands/run.js';
import { closeDefaultS3Client } from '../src/ingest/s3.js';
import { silentLogger } from '../src/logger.js';
import { readCsvFile, testConfig, token } from './support/harness.js';
import { startS3rver } from './support/s3rver.js';
import { pipelineFixture } from './support/fixture.js';

describe('run with an S3 fx.prefix as its source', () => {
  const fx = pipelineFixture('s3run');
  let s3: { port: number; child: ChildProcess };

  beforeAll(async () => {
    s3 = await startS3rver(join(fx.dir, 's3'));
    // The pipeline reads S3 through the standard AWS configuration, as in production.
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      S3_ENDPOINT: `http://127.0.0.1:${s3.port}`,
      S3_FORCE_PATH_STYLE: 'true',
    });
  });
  afterAll(() => {
    closeDefaultS3Client();
    s3.child.stdin?.end();
  });

  it('migrates every CSV object under the fx.prefix, in key order, naming object and line', async () => {
    const client = new S3Client({
      endpoint: `http://127.0.0.1:${s3.port}`,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const put = (Key: string, Body: string | Buffer): Promise<unknown> => client.send(new PutObjectCommand({ Bucket: 'exports', Key, Body }));
    await client.send(new CreateBucketCommand({ Bucket: 'exports' }));
    await put('receipts/2026-11-20/a.csv', `platform,app_user_id,fetch_token\nios,s3-a1,${token(1)}\nios,s3-a2,${token(2)}\n`);
    await put('receipts/2026-11-20/b.csv.gz', gzipSync(`platform,app_user_id,fetch_token\nios,s3-b1,${token(3)}\nios,guest,${token(4)}\nios,s3-b3,${token(5, 'invalid')}\n`));
    await put('receipts/2026-11-20/c-empty.csv', '');
    await put('receipts/2026-11-20/notes.txt', 'not a CSV');
    await put('receipts/2026-11-21/a.csv', `platform,app_user_id,fetch_token\nios,other-day,${token(9)}\n`);
    client.destroy();

    // The S3 settings are configuration keys (S3_ENDPOINT, S3_FORCE_PATH_STYLE, AWS_REGION read by loadConfig);
    // the test config does not read the environment, so it gets them as overrides. Credentials stay the SDK's.
    const config = testConfig(fx.prefix, fx.sandbox.url, { s3Endpoint: `http://127.0.0.1:${s3.port}`, s3ForcePathStyle: true, s3Region: 'us-east-1' });
    const result = await runMigration({ config, logger: silentLogger(), sources: ['s3://exports/receipts/2026-11-20/'], runId: 's3', outDir: join(fx.dir, 'report') });
    expect(result.summary).toMatchObject({ rows_read: 5, rows_succeeded: 3, rows_failed: 1, rows_rejected: 1 });
    expect(result.summary.sources).toEqual(['s3://exports/receipts/2026-11-20/a.csv', 's3://exports/receipts/2026-11-20/b.csv.gz', 's3://exports/receipts/2026-11-20/c-empty.csv']);

    const rejected = await readCsvFile(result.files.rejected);
    expect(rejected).toEqual([expect.objectContaining({ app_user_id: 'guest', error_source: 's3://exports/receipts/2026-11-20/b.csv.gz', error_line: '3' })]);
    const failed = await readCsvFile(result.files.failed);
    expect(failed).toEqual([expect.objectContaining({ app_user_id: 's3-b3', error_source: 's3://exports/receipts/2026-11-20/b.csv.gz', error_line: '4', error_code: '7103' })]);
    const succeeded = await readCsvFile(result.files.succeeded);
    expect(succeeded.map((r) => `${r.source}#${r.line}`).sort()).toEqual([
      's3://exports/receipts/2026-11-20/a.csv#2',
      's3://exports/receipts/2026-11-20/a.csv#3',
      's3://exports/receipts/2026-11-20/b.csv.gz#2',
    ]);
    expect(fx.sandbox.stats().receiptPosts.total).toBe(4);
  });
});
