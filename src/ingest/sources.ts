// Where rows come from. A source is a name the user typed: a local CSV path or an `s3://bucket/prefix` URL. This is
// the one place that turns it into streams. One source can stand for several inputs (every CSV object under an S3
// prefix), so a source expands into entries, each with the name that its rows' places carry.
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError } from '../config.js';
import { readCsvFile, type CsvItem, type ReadCsvOptions } from './readCsv.js';
import type { ReadS3Options, S3ObjectRef } from './s3.js';
import type { SourceIdentity } from './sourceRecord.js';
import { isS3Url, parseS3Url } from './s3Url.js';

export { isS3Url } from './s3Url.js';

/** The S3 module (and the AWS SDK under it, ~25 MB) is loaded only when a source is on S3. */
const s3 = (): Promise<typeof import('./s3.js')> => import('./s3.js');

/** One input of a source: a local file, or one object under an S3 prefix. */
export interface SourceEntry {
  /** The name every item of this entry carries as `source`: the path as given, or `s3://bucket/key`. */
  name: string;
  /** Streams the entry's items. An S3 object that fails part-way ends with a problem instead of throwing. */
  open(): AsyncIterable<CsvItem>;
  /** What the entry is now (size and mtime, or ETag), for the run's record of it (sourceRecord.ts). */
  identify(): Promise<SourceIdentity>;
}

export interface SourceDeps {
  /** S3 client to use (default: the process's client, configured from the environment). */
  s3?: S3Client;
  /** Resume behaviour of S3 body streams (tests). */
  s3Read?: ReadS3Options;
  /** Keys per ListObjectsV2 page (default: the service's, 1000). */
  s3PageSize?: number;
}

/**
 * The inputs a source stands for, in order: a local path is one entry named by the path; an S3 URL is one entry per
 * CSV object under the prefix (keys ending in .csv or .csv.gz, any case), in key order, listed lazily page by page.
 * `read` says how every entry's text is read (its encoding).
 * Throws a ConfigError for an S3 URL without a bucket, and an Error naming the URL when the listing fails.
 */
export async function* expandSource(source: string, deps: SourceDeps = {}, read: ReadCsvOptions = {}): AsyncGenerator<SourceEntry, void, undefined> {
  if (!isS3Url(source)) {
    yield { name: source, open: () => readCsvFile(source, read), identify: () => fileIdentity(source) };
    return;
  }
  const location = parseS3Url(source);
  const { defaultS3Client, describeError, headS3Object, listCsvObjects, readS3Csv } = await s3();
  const client = deps.s3 ?? defaultS3Client();
  const objects = listCsvObjects(client, location, deps.s3PageSize === undefined ? {} : { pageSize: deps.s3PageSize });
  for (;;) {
    let next: IteratorResult<S3ObjectRef, void>;
    try {
      next = await objects.next();
    } catch (err) {
      throw new Error(`cannot list the objects of ${source}: ${describeError(err)}`, { cause: err });
    }
    if (next.done === true) return;
    const { bucket, key, name, etag, size } = next.value;
    const identify = async (): Promise<SourceIdentity> => {
      // The listing's ETag and size; an S3-compatible store whose listing leaves the ETag out is asked for it.
      const head = etag === undefined ? await headS3Object(client, bucket, key) : { etag, ...(size === undefined ? {} : { size }) };
      if (head.etag === undefined) throw new Error(`${name}: the store gives no ETag for the object`);
      return { kind: 's3', bucket, key, etag: head.etag, ...(head.size === undefined ? {} : { size: head.size }) };
    };
    yield { name, open: () => readS3Csv(client, bucket, key, deps.s3Read, read), identify };
  }
}

/** A local file's identity: its absolute path, size and mtime. */
export async function fileIdentity(path: string): Promise<SourceIdentity> {
  const absolute = resolve(path);
  const stats = await stat(absolute);
  return { kind: 'file', path: absolute, size: stats.size, mtimeMs: stats.mtimeMs };
}

/** Every item of a source, entry after entry (each item's `source` is its entry's name). */
export async function* openSource(source: string, deps: SourceDeps = {}, read: ReadCsvOptions = {}): AsyncGenerator<CsvItem, void, undefined> {
  for await (const entry of expandSource(source, deps, read)) yield* entry.open();
}

/** Checked before a run starts, so a typo stops the run with a message instead of a half-done ingest. */
export async function checkSources(sources: string[], deps: SourceDeps = {}): Promise<void> {
  if (sources.length === 0) throw new ConfigError('no source given: name one or more CSV files (.csv or .csv.gz) or s3://bucket/prefix URLs');
  for (const source of sources) {
    if (isS3Url(source)) {
      await checkS3Source(source, deps);
      continue;
    }
    if (/^s3:/i.test(source)) throw new ConfigError(`source ${source} is not a valid S3 URL: write it as s3://bucket/prefix`);
    let kind;
    try {
      kind = await stat(source);
    } catch {
      throw new ConfigError(`source not found: ${source} (give the path of a CSV or CSV.gz file, or an s3://bucket/prefix URL)`);
    }
    if (kind.isDirectory()) throw new ConfigError(`source ${source} is a directory: name the CSV files in it (${join(source, '*.csv')})`);
    // A pipe (`<(zcat exports.csv.gz)`, /dev/stdin) can be read once, and a source is read more than once: the survey
    // before the rows are sent, a resumed ingest, failed.csv and retry reading rows again from it (ingest/reread.ts).
    if (!kind.isFile()) {
      throw new ConfigError(
        `source ${source} is not a regular file (a pipe or a process substitution can be read only once, and rc-migrate reads a source again to resume and to write failed.csv): give the file itself (a .csv.gz is read as it is) or save the stream to a file first`,
      );
    }
  }
}

async function checkS3Source(source: string, deps: SourceDeps): Promise<void> {
  const location = parseS3Url(source);
  const { defaultS3Client, describeError, listCsvObjects } = await s3();
  const client = deps.s3 ?? defaultS3Client();
  const objects = listCsvObjects(client, location, deps.s3PageSize === undefined ? {} : { pageSize: deps.s3PageSize });
  let found: boolean;
  try {
    found = (await objects.next()).done !== true;
  } catch (err) {
    throw new ConfigError(`cannot list S3 source ${source}: ${listingAdvice(err, location.bucket, describeError(err))}`);
  } finally {
    await objects.return();
  }
  if (!found) {
    throw new ConfigError(
      `S3 source ${source} holds no CSV object: no key under ${location.prefix === '' ? 'the bucket' : `prefix "${location.prefix}"`} ends in .csv or .csv.gz; check the bucket and prefix`,
    );
  }
}

function listingAdvice(err: unknown, bucket: string, what: string): string {
  const e = err as { name?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: unknown } } | undefined;
  const code = typeof e?.Code === 'string' ? e.Code : typeof e?.name === 'string' ? e.name : '';
  const status = e?.$metadata?.httpStatusCode;
  if (code === 'NoSuchBucket' || status === 404) return `bucket "${bucket}" does not exist (${what}); check the bucket name, the region (AWS_REGION) and S3_ENDPOINT`;
  if (code === 'AccessDenied' || code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || status === 403) {
    return `access denied (${what}); check the AWS credentials and that they may list the bucket (s3:ListBucket) and read its objects (s3:GetObject)`;
  }
  if (code === 'CredentialsProviderError') return `no AWS credentials found (${what}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE`;
  return `${what}; check the network, the region (AWS_REGION) and S3_ENDPOINT`;
}
