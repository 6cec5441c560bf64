// S3 sources: `s3://bucket/prefix` names every CSV object under a key prefix. Objects are listed in key order
// (ListObjectsV2, page by page) and each is streamed from GetObject straight into the CSV reader: nothing is
// downloaded whole.
//
// Design notes:
// - Configuration is the SDK's own (credentials chain, profiles, AWS_REGION) plus two variables for S3-compatible
//   stores, read in one place (s3ClientFromEnv). One client per process, created on first use.
// - A body stream can break long after it was opened: the ingester stops reading while the queue is above its
//   high-water mark, sometimes for many minutes, and S3 (or a NAT on the way) drops idle connections. A broken
//   stream is therefore reopened where it stopped (Range from the byte offset reached, If-Match on the ETag so a
//   changed object is never spliced), a few times in a row at most. Only when that fails too does the object end
//   with a problem (line reached, reason), and the next object is read as usual.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { loadConfig, type Config } from '../config.js';
import { readCsvStream, type CsvItem, type ReadCsvOptions } from './readCsv.js';
import { isCsvKey, s3ObjectName, type S3Location } from './s3Url.js';

export { isCsvKey, isS3Url, parseS3Url, s3ObjectName, type S3Location } from './s3Url.js';

export interface S3ObjectRef {
  bucket: string;
  key: string;
  /** `s3://bucket/key`: the name used in every line reference. */
  name: string;
  size?: number;
  /** as the listing gives it (quoted, as S3 writes it) */
  etag?: string;
}

/** Region used when neither the environment nor the AWS config files name one. */
export const DEFAULT_S3_REGION = 'us-east-1';

/** The S3 settings of the validated configuration (config.ts: S3_ENDPOINT, S3_FORCE_PATH_STYLE, AWS_REGION). */
export type S3Settings = Pick<Config, 's3Endpoint' | 's3ForcePathStyle' | 's3Region'>;

/**
 * The S3 client configuration: the SDK's default credentials chain and the region (`s3Region`: AWS_REGION, or
 * AWS_DEFAULT_REGION; else the profile's region, else us-east-1), plus
 * - `s3Endpoint`: endpoint of an S3-compatible store (checksums are then only computed/validated when required,
 *   which such stores need);
 * - `s3ForcePathStyle`: path-style addressing (http://host/bucket/key).
 * Credentials in the given env (AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN]) are used as they
 * are unless AWS_PROFILE is set (as the SDK's chain does); otherwise the SDK's chain finds them.
 */
export function s3ClientConfig(settings: S3Settings, env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const config: S3ClientConfig = {
    region: settings.s3Region ?? regionFromProfileOrDefault,
    // A stalled connection fails instead of hanging the ingest; a broken body stream is reopened (see readS3Csv).
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000 },
  };
  const accessKeyId = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const secretAccessKey = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  if (accessKeyId !== undefined && secretAccessKey !== undefined && nonEmpty(env.AWS_PROFILE) === undefined) {
    const sessionToken = nonEmpty(env.AWS_SESSION_TOKEN);
    config.credentials = sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
  }
  if (settings.s3Endpoint !== undefined) {
    config.endpoint = settings.s3Endpoint;
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  } else {
    // On AWS, a bucket in another region than the configured one is still reached (the SDK follows the redirect).
    config.followRegionRedirects = true;
  }
  if (settings.s3ForcePathStyle !== undefined) config.forcePathStyle = settings.s3ForcePathStyle;
  return config;
}

/** The S3 client configuration from an environment, its S3 settings validated as the configuration's. */
export function s3ClientConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  return s3ClientConfig(loadConfig({ env }), env);
}

/** A new S3 client with these settings (see s3ClientConfig). */
export function s3Client(settings: S3Settings, env: NodeJS.ProcessEnv = process.env): S3Client {
  return new S3Client(s3ClientConfig(settings, env));
}

/** A new S3 client configured from the environment (see s3ClientConfigFromEnv). */
export function s3ClientFromEnv(env: NodeJS.ProcessEnv = process.env): S3Client {
  return new S3Client(s3ClientConfigFromEnv(env));
}

let sharedClient: S3Client | undefined;

/** The process's S3 client, created from process.env on first use and reused for every object. */
export function defaultS3Client(): S3Client {
  sharedClient ??= s3ClientFromEnv(process.env);
  return sharedClient;
}

/** Closes the process's S3 client, if one was made (its keep-alive sockets); the next use makes a new one. */
export function closeDefaultS3Client(): void {
  sharedClient?.destroy();
  sharedClient = undefined;
}

/**
 * The CSV objects under a location, in key order, listed page by page. When the prefix is itself the key of a CSV
 * object (`s3://b/exports/day.csv`), that object alone.
 */
export async function* listCsvObjects(client: S3Client, location: S3Location, opts: { pageSize?: number } = {}): AsyncGenerator<S3ObjectRef, void, undefined> {
  const { bucket, prefix } = location;
  let continuationToken: string | undefined;
  let first = true;
  do {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        ...(prefix === '' ? {} : { Prefix: prefix }),
        ...(continuationToken === undefined ? {} : { ContinuationToken: continuationToken }),
        ...(opts.pageSize === undefined ? {} : { MaxKeys: opts.pageSize }),
      }),
    );
    for (const object of page.Contents ?? []) {
      const key = object.Key;
      if (key === undefined) continue;
      // Keys come in UTF-8 binary order, so an object whose key is the prefix itself comes first.
      const exact = first && prefix !== '' && key === prefix;
      first = false;
      if (!isCsvKey(key)) continue;
      yield {
        bucket,
        key,
        name: s3ObjectName(bucket, key),
        ...(object.Size === undefined ? {} : { size: object.Size }),
        ...(object.ETag === undefined ? {} : { etag: object.ETag }),
      };
      if (exact) return;
    }
    continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (continuationToken !== undefined);
}

export interface ReadS3Options {
  /** How many times in a row a broken body stream is reopened before the object is given up (default 5). */
  maxResumes?: number;
  /** Wait before the first reopening, doubled each time up to 16× (default 1000 ms). */
  resumeDelayMs?: number;
  /** Read the object only while its ETag is this one (a row read again must come from the bytes the run read). */
  ifMatch?: string;
}

/** An object's ETag and size (HeadObject): what a run remembers of it, and checks before reading it again. */
export async function headS3Object(client: S3Client, bucket: string, key: string): Promise<{ etag?: string; size?: number }> {
  const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return { ...(out.ETag === undefined ? {} : { etag: out.ETag }), ...(out.ContentLength === undefined ? {} : { size: out.ContentLength }) };
}

/**
 * Streams one object through the CSV reader; items are named `s3://bucket/key`. Never throws for the object's own
 * sake: an object that cannot be read (missing, denied, a stream that keeps breaking) ends with a problem at the
 * line reached, so the caller goes on with the next object.
 */
export async function* readS3Csv(client: S3Client, bucket: string, key: string, opts: ReadS3Options = {}, read: ReadCsvOptions = {}): AsyncGenerator<CsvItem, void, undefined> {
  const name = s3ObjectName(bucket, key);
  let lastLine = 0;
  const progress = { bytes: 0 };
  const body = Readable.from(objectBytes(client, bucket, key, opts, progress), { objectMode: false });
  try {
    // .gz is gunzipped; any other key is sniffed for the gzip magic, as local files are.
    for await (const item of readCsvStream(body, name, { ...read, ...(key.toLowerCase().endsWith('.gz') ? { gzip: true } : {}) })) {
      lastLine = item.line;
      yield item;
    }
  } catch (err) {
    const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
    const reason =
      progress.bytes === 0
        ? `the object could not be read (${describeError(cause)}); nothing of it was read`
        : `reading the object failed after line ${lastLine} (${describeError(cause)}): the rest of it was not read; run the same command again to read it`;
    yield { kind: 'problem', source: name, line: lastLine + 1, reason };
  } finally {
    body.destroy();
  }
}

/** The object's bytes, reopened with a Range request where a broken stream stopped. */
async function* objectBytes(client: S3Client, bucket: string, key: string, opts: ReadS3Options, progress: { bytes: number }): AsyncGenerator<Buffer, void, undefined> {
  const maxResumes = opts.maxResumes ?? 5;
  const baseDelay = opts.resumeDelayMs ?? 1000;
  let etag: string | undefined = opts.ifMatch;
  let size: number | undefined;
  let failures = 0;
  for (;;) {
    const offset = progress.bytes;
    if (size !== undefined && offset >= size) return;
    let body: Readable | undefined;
    try {
      const out = await client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}),
          ...(etag !== undefined && (offset > 0 || opts.ifMatch !== undefined) ? { IfMatch: etag } : {}),
        }),
      );
      etag ??= out.ETag;
      if (offset === 0 && out.ContentLength !== undefined) size = out.ContentLength;
      if (!(out.Body instanceof Readable)) throw new Error('the GetObject answer has no body stream');
      body = out.Body;
      for await (const chunk of body as AsyncIterable<Buffer | string>) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
        if (buf.length === 0) continue;
        progress.bytes += buf.length;
        failures = 0;
        yield buf;
      }
      if (size !== undefined && progress.bytes < size) throw Object.assign(new Error(`the stream ended after ${progress.bytes} of ${size} bytes`), { code: 'SHORT_BODY' });
      return;
    } catch (err) {
      if (!resumable(err) || failures >= maxResumes) throw err;
      failures++;
      await sleep(Math.min(baseDelay * 2 ** (failures - 1), baseDelay * 16));
    } finally {
      body?.destroy();
    }
  }
}

/** A service answer 4xx (missing, denied, changed since first read, bad range) will not get better by retrying. */
function resumable(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata?.httpStatusCode;
  return !(typeof status === 'number' && status >= 400 && status < 500);
}

/** `NoSuchKey: The specified key does not exist.`: the service's code and message, or the error's message. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const serviceCode = (err as { Code?: unknown }).Code;
    const code = typeof serviceCode === 'string' ? serviceCode : err.name;
    const message = err.message.trim();
    if (code !== '' && code !== 'Error' && !message.startsWith(code)) return message === '' ? code : `${code}: ${message}`;
    return message === '' ? code : message;
  }
  return String(err);
}

/** Region from the SDK's own chain (AWS_REGION, the profile in the AWS config files), else us-east-1. */
async function regionFromProfileOrDefault(): Promise<string> {
  const probe = new S3Client({});
  try {
    const region = await probe.config.region();
    return region === '' ? DEFAULT_S3_REGION : region;
  } catch {
    return DEFAULT_S3_REGION;
  } finally {
    probe.destroy();
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v === undefined || v === '' ? undefined : v;
}
