// S3 sources against a real S3 server (s3rver on 127.0.0.1, port 0, files in a temp directory): listing in key order
// with pagination, streamed plain and gzipped objects, configuration errors, the client's configuration from the
// environment, and objects whose stream breaks part-way (reopened where they stopped, or reported as a problem).
import { mkdtemp, rm } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.js';
import type { CsvItem, CsvProblem, CsvRecord } from '../src/ingest/readCsv.js';
import { isCsvKey, listCsvObjects, parseS3Url, readS3Csv, s3ClientConfigFromEnv, s3ClientFromEnv } from '../src/ingest/s3.js';
import { checkSources, expandSource, openSource, type SourceDeps } from '../src/ingest/sources.js';
import { startS3rver } from './support/s3rver.js';

const BUCKET = 'rcm-exports';
const CREDENTIALS_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

let dir: string;
let server: ChildProcess | undefined;
let client: S3Client;
let endpoint: string;
const clients: S3Client[] = [];

function testClient(): S3Client {
  const c = s3ClientFromEnv({ ...CREDENTIALS_ENV, S3_ENDPOINT: endpoint, S3_FORCE_PATH_STYLE: 'true' });
  clients.push(c);
  return c;
}

async function put(key: string, body: string | Buffer): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function records(items: CsvItem[]): CsvRecord[] {
  return items.filter((i): i is CsvRecord => i.kind === 'record');
}
function problems(items: CsvItem[]): CsvProblem[] {
  return items.filter((i): i is CsvProblem => i.kind === 'problem');
}

const A_CSV = 'app_user_id,fetch_token\r\nu1,tok-a1\r\n\r\nu2,"tok\r\na2"\r\nu3,tok-a3\r\n';
const A_GZ = 'app_user_id,fetch_token\ng1,tok-g1\ng2,tok-g2\n';
const B_CSV = '\uFEFFapp_user_id,fetch_token,platform\nb1,tok-b1,ios\n';
const LARGE_ROWS = 50_000;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rc-migrate-s3-'));
  const started = await startS3rver(dir);
  server = started.child;
  const port = started.port;
  endpoint = `http://127.0.0.1:${port}`;
  client = testClient();
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  // Put out of key order on purpose: listing must come back in key order.
  await put('day1/readme.txt', 'not a csv\n');
  await put('day1/b.CSV', B_CSV);
  await put('day1/c-empty.csv', Buffer.alloc(0));
  await put('day1/a.csv.gz', gzipSync(A_GZ));
  await put('day1/a.csv', A_CSV);
  await put('day2/other.csv', 'app_user_id,fetch_token\nx1,tok-x1\n');
  await put('docs/readme.md', '# nothing\n');
  const lines = ['app_user_id,fetch_token'];
  for (let i = 1; i <= LARGE_ROWS; i++) lines.push(`user-${i},token-${i}-${'x'.repeat(40)}`);
  await put('large/big.csv.gz', gzipSync(`${lines.join('\n')}\n`));
  for (const n of [1, 2, 3]) await put(`frail/part-${n}.csv`, `app_user_id,fetch_token\n${Array.from({ length: 2000 }, (_, i) => `p${n}-${i},t${n}-${i}`).join('\n')}\n`);
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  if (server !== undefined && server.exitCode === null) {
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    await exited;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('S3 URLs', () => {
  it('parses bucket and prefix and recognises CSV keys', () => {
    expect(parseS3Url('s3://b/exports/day.csv')).toEqual({ bucket: 'b', prefix: 'exports/day.csv' });
    expect(parseS3Url('S3://b')).toEqual({ bucket: 'b', prefix: '' });
    expect(parseS3Url('s3://b/')).toEqual({ bucket: 'b', prefix: '' });
    expect(() => parseS3Url('s3:///exports/')).toThrow(ConfigError);
    expect(() => parseS3Url('s3://bad bucket/x')).toThrow(ConfigError);
    expect(['a.csv', 'a.CSV', 'a.csv.gz', 'a.Csv.GZ'].every(isCsvKey)).toBe(true);
    expect(['a.txt', 'a.gz', 'a.csv.zip', 'dir/', 'a.csvx'].some(isCsvKey)).toBe(false);
  });
});

describe('expandSource and reading objects', () => {
  it('a prefix yields exactly its CSV objects in key order, each read with its own name and lines', async () => {
    const deps: SourceDeps = { s3: client };
    const entries = await collect(expandSource(`s3://${BUCKET}/day1/`, deps));
    expect(entries.map((e) => e.name)).toEqual([`s3://${BUCKET}/day1/a.csv`, `s3://${BUCKET}/day1/a.csv.gz`, `s3://${BUCKET}/day1/b.CSV`, `s3://${BUCKET}/day1/c-empty.csv`]);

    const perEntry = await Promise.all(entries.map(async (e) => collect(e.open())));
    const [a, aGz, b, empty] = perEntry;
    expect(problems(perEntry.flat())).toEqual([]);
    expect(records(a ?? []).map((r) => [r.source, r.line, r.values])).toEqual([
      [`s3://${BUCKET}/day1/a.csv`, 2, { app_user_id: 'u1', fetch_token: 'tok-a1' }],
      [`s3://${BUCKET}/day1/a.csv`, 4, { app_user_id: 'u2', fetch_token: 'tok\na2' }],
      [`s3://${BUCKET}/day1/a.csv`, 6, { app_user_id: 'u3', fetch_token: 'tok-a3' }],
    ]);
    expect(records(aGz ?? []).map((r) => [r.source, r.line, r.values.app_user_id])).toEqual([
      [`s3://${BUCKET}/day1/a.csv.gz`, 2, 'g1'],
      [`s3://${BUCKET}/day1/a.csv.gz`, 3, 'g2'],
    ]);
    expect(records(b ?? []).map((r) => [r.source, r.line, r.columns, r.values.platform])).toEqual([
      [`s3://${BUCKET}/day1/b.CSV`, 2, ['app_user_id', 'fetch_token', 'platform'], 'ios'],
    ]);
    expect(empty).toEqual([]);
  });

  it('lists page by page (ListObjectsV2 continuation) without losing the order', async () => {
    const counting = testClient();
    let listCalls = 0;
    counting.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ListObjectsV2Command') listCalls++;
        return next(args);
      },
      { step: 'initialize', name: 'countLists' },
    );
    const refs = await collect(listCsvObjects(counting, { bucket: BUCKET, prefix: '' }, { pageSize: 2 }));
    expect(listCalls).toBe(6); // 11 keys, 2 per page
    expect(refs.map((r) => r.key)).toEqual([
      'day1/a.csv',
      'day1/a.csv.gz',
      'day1/b.CSV',
      'day1/c-empty.csv',
      'day2/other.csv',
      'frail/part-1.csv',
      'frail/part-2.csv',
      'frail/part-3.csv',
      'large/big.csv.gz',
    ]);
    const viaSource = await collect(expandSource(`s3://${BUCKET}/day1/`, { s3: client, s3PageSize: 1 }));
    expect(viaSource).toHaveLength(4);
  });

  it('openSource reads every object of a prefix in turn, items named by object', async () => {
    const items = await collect(openSource(`s3://${BUCKET}/day1/`, { s3: client }));
    expect(records(items).map((r) => `${r.source.replace(`s3://${BUCKET}/`, '')}:${r.line}`)).toEqual([
      'day1/a.csv:2',
      'day1/a.csv:4',
      'day1/a.csv:6',
      'day1/a.csv.gz:2',
      'day1/a.csv.gz:3',
      'day1/b.CSV:2',
    ]);
  });

  it('a URL naming one object reads that object only', async () => {
    const entries = await collect(expandSource(`s3://${BUCKET}/day1/a.csv`, { s3: client }));
    expect(entries.map((e) => e.name)).toEqual([`s3://${BUCKET}/day1/a.csv`]);
    expect(records(await collect(entries[0]!.open()))).toHaveLength(3);
    await expect(checkSources([`s3://${BUCKET}/day1/a.csv`], { s3: client })).resolves.toBeUndefined();
  });

  it('reads objects in the encoding given (a gzipped windows-1252 object with a sep=; hint), as local files', async () => {
    const text = 'sep=;\r\napp_user_id;$note\r\nHélène;9,99 \u20ac\r\n';
    const cp1252 = Buffer.from(Array.from(text, (ch) => (ch === '\u20ac' ? 0x80 : ch.charCodeAt(0))));
    await put('encodings/fr.csv.gz', gzipSync(cp1252));
    const items = await collect(openSource(`s3://${BUCKET}/encodings/`, { s3: client }, { encoding: 'windows-1252' }));
    expect(items).toEqual([
      { kind: 'record', source: `s3://${BUCKET}/encodings/fr.csv.gz`, line: 3, columns: ['app_user_id', '$note'], values: { app_user_id: 'Hélène', $note: '9,99 €' } },
    ]);
    // Read as UTF-8 (the default), the same object is refused row by row.
    const asUtf8 = await collect(openSource(`s3://${BUCKET}/encodings/`, { s3: client }));
    expect(asUtf8.map((i) => (i.kind === 'problem' ? [i.line, i.reason] : [i.line]))).toEqual([[3, 'not valid UTF-8 (column "app_user_id"); save the file as UTF-8']]);
  });

  it('a local path is one entry named by its path', async () => {
    const entries = await collect(expandSource('examples/receipts.csv'));
    expect(entries.map((e) => e.name)).toEqual(['examples/receipts.csv']);
  });

  it(`streams a large gzipped object (${LARGE_ROWS} rows) to the end`, async () => {
    let count = 0;
    let lastLine = 0;
    let problemCount = 0;
    for await (const item of openSource(`s3://${BUCKET}/large/`, { s3: client })) {
      if (item.kind === 'problem') problemCount++;
      else {
        count++;
        lastLine = item.line;
        expect(item.source).toBe(`s3://${BUCKET}/large/big.csv.gz`);
      }
    }
    expect(problemCount).toBe(0);
    expect(count).toBe(LARGE_ROWS);
    expect(lastLine).toBe(LARGE_ROWS + 1);
  });
});

describe('checkSources', () => {
  it('accepts a prefix with CSV objects, and a local file beside it', async () => {
    await expect(checkSources([`s3://${BUCKET}/day1/`, 'examples/receipts.csv'], { s3: client })).resolves.toBeUndefined();
  });

  it('a missing bucket is a ConfigError naming the URL', async () => {
    const url = 's3://no-such-bucket-here/exports/';
    const err = await checkSources([url], { s3: client }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(url);
    expect((err as Error).message).toMatch(/does not exist/);
  });

  it('a prefix without CSV objects is a ConfigError naming the URL', async () => {
    for (const url of [`s3://${BUCKET}/nothing-here/`, `s3://${BUCKET}/docs/`]) {
      const err = await checkSources([url], { s3: client }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(url);
      expect((err as Error).message).toMatch(/no CSV object/);
    }
  });

  it('a URL without a bucket is a ConfigError', async () => {
    await expect(checkSources(['s3:///exports/'], { s3: client })).rejects.toThrow(ConfigError);
    await expect(checkSources(['s3:/bucket/exports/'], { s3: client })).rejects.toThrow(/s3:\/\/bucket\/prefix/);
  });
});

describe('s3ClientFromEnv', () => {
  it('S3_ENDPOINT and S3_FORCE_PATH_STYLE set the endpoint, path-style addressing and checksums when required', async () => {
    const c = s3ClientFromEnv({ ...CREDENTIALS_ENV, S3_ENDPOINT: 'http://127.0.0.1:9000', S3_FORCE_PATH_STYLE: '1' });
    clients.push(c);
    const resolved = await c.config.endpoint?.();
    expect(resolved).toMatchObject({ protocol: 'http:', hostname: '127.0.0.1', port: 9000 });
    expect(c.config.forcePathStyle).toBe(true);
    expect(await c.config.requestChecksumCalculation()).toBe('WHEN_REQUIRED');
    expect(await c.config.responseChecksumValidation()).toBe('WHEN_REQUIRED');
    expect(await c.config.region()).toBe('us-east-1');
    expect(await c.config.credentials()).toMatchObject({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  });

  it('without overrides: no endpoint, virtual-hosted style, region from AWS_DEFAULT_REGION, default checksums', () => {
    const config = s3ClientConfigFromEnv({ AWS_DEFAULT_REGION: 'eu-west-1', S3_FORCE_PATH_STYLE: 'false' });
    expect(config.endpoint).toBeUndefined();
    expect(config.forcePathStyle).toBe(false);
    expect(config.requestChecksumCalculation).toBeUndefined();
    expect(config.region).toBe('eu-west-1');
    expect(config.credentials).toBeUndefined(); // left to the SDK's chain
    expect(s3ClientConfigFromEnv({ S3_FORCE_PATH_STYLE: 'TRUE' }).forcePathStyle).toBe(true);
    expect(typeof s3ClientConfigFromEnv({}).region).toBe('function'); // profile region, else us-east-1
  });

  it('bad values are ConfigErrors that name the variable', () => {
    expect(() => s3ClientConfigFromEnv({ S3_ENDPOINT: 'not a url' })).toThrow(/S3_ENDPOINT/);
    expect(() => s3ClientConfigFromEnv({ S3_ENDPOINT: 'ftp://host' })).toThrow(ConfigError);
    expect(() => s3ClientConfigFromEnv({ S3_FORCE_PATH_STYLE: 'yes please' })).toThrow(/S3_FORCE_PATH_STYLE/);
  });
});

describe('objects whose stream breaks', () => {
  /**
   * A real client whose GetObject bodies break: `plan(key, call)` gives how many bytes the body of that call
   * (0-based, per key) delivers before failing, or undefined for an intact body.
   */
  function breakingClient(plan: (key: string, call: number) => number | undefined): { c: S3Client; calls: Map<string, number> } {
    const c = testClient();
    const calls = new Map<string, number>();
    c.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName !== 'GetObjectCommand') return result;
        const key = String((args.input as { Key?: unknown }).Key);
        const call = calls.get(key) ?? 0;
        calls.set(key, call + 1);
        const limit = plan(key, call);
        const output = result.output as { Body?: unknown };
        if (limit !== undefined && output.Body instanceof Readable) output.Body = breakAfter(output.Body, limit);
        return result;
      },
      { step: 'initialize', name: 'breakBodies' },
    );
    return { c, calls };
  }

  function breakAfter(body: Readable, limit: number): Readable {
    return Readable.from(
      (async function* () {
        let sent = 0;
        try {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            if (sent + chunk.length > limit) {
              if (limit > sent) yield chunk.subarray(0, limit - sent);
              throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
            }
            sent += chunk.length;
            yield chunk;
          }
        } finally {
          body.destroy();
        }
      })(),
      { objectMode: false },
    );
  }

  it('a stream that breaks is reopened where it stopped: every row is read once', async () => {
    const { c, calls } = breakingClient((key, call) => (key === 'large/big.csv.gz' && call < 3 ? 50_000 : undefined));
    const items = await collect(readS3Csv(c, BUCKET, 'large/big.csv.gz', { resumeDelayMs: 1 }));
    expect(problems(items)).toEqual([]);
    const recs = records(items);
    expect(recs).toHaveLength(LARGE_ROWS);
    expect(new Set(recs.map((r) => r.values.app_user_id)).size).toBe(LARGE_ROWS);
    expect(recs.at(-1)?.line).toBe(LARGE_ROWS + 1);
    expect(calls.get('large/big.csv.gz')).toBe(4); // three broken bodies, three reopenings
  });

  it('an object that cannot be read to the end becomes a problem at the line reached; the next object is still read', async () => {
    // part-2 delivers 10,000 bytes, then every reopening fails at once.
    const { c, calls } = breakingClient((key, call) => (key === 'frail/part-2.csv' ? (call === 0 ? 10_000 : 0) : undefined));
    const items = await collect(openSource(`s3://${BUCKET}/frail/`, { s3: c, s3Read: { maxResumes: 2, resumeDelayMs: 1 } }));
    const byObject = (n: number): CsvItem[] => items.filter((i) => i.source === `s3://${BUCKET}/frail/part-${n}.csv`);
    expect(records(byObject(1))).toHaveLength(2000);
    expect(records(byObject(3))).toHaveLength(2000);
    const part2 = byObject(2);
    const read = records(part2);
    expect(read.length).toBeGreaterThan(0);
    expect(read.length).toBeLessThan(2000);
    const [problem, ...more] = problems(part2);
    expect(more).toEqual([]);
    expect(problem?.line).toBe((read.at(-1)?.line ?? 0) + 1);
    expect(problem?.reason).toMatch(/ECONNRESET/);
    expect(problem?.reason).toContain(`after line ${read.at(-1)?.line}`);
    expect(part2.at(-1)).toBe(problem);
    expect(calls.get('frail/part-2.csv')).toBe(3); // the first read and maxResumes reopenings
  });

  it('an object deleted after it was listed is a problem on line 1; the others are read', async () => {
    await put('vanishing/1.csv', 'app_user_id,fetch_token\nv1,t1\n');
    await put('vanishing/2.csv', 'app_user_id,fetch_token\nv2,t2\n');
    await put('vanishing/3.csv', 'app_user_id,fetch_token\nv3,t3\n');
    const items: CsvItem[] = [];
    for await (const entry of expandSource(`s3://${BUCKET}/vanishing/`, { s3: client })) {
      if (entry.name.endsWith('/1.csv')) await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'vanishing/2.csv' }));
      for await (const item of entry.open()) items.push(item);
    }
    expect(records(items).map((r) => r.values.app_user_id)).toEqual(['v1', 'v3']);
    expect(problems(items)).toEqual([
      { kind: 'problem', source: `s3://${BUCKET}/vanishing/2.csv`, line: 1, reason: expect.stringMatching(/^the object could not be read \(NoSuchKey/) },
    ]);
  });
});
