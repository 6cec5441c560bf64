// What a run remembers of each source it read (ledger/sourceCatalog.ts stores it): which bytes the rows came from
// (a local file's size and mtime, an S3 object's ETag and size) and how they were read (column options, text
// encoding, the header). A failed row keeps only its place in Redis; failed.csv and `retry` read its cells again,
// and this record says where, how, and whether the source is still the one the run read.
// The separator (a `sep=` hint) and gzip are found in the bytes themselves, as at ingest, so they need no record.
import { z } from 'zod';
import { PLATFORMS } from '../revenuecat/fields.js';
import type { ColumnOptions } from './columns.js';
import { INPUT_ENCODINGS, type InputEncoding } from './textEncoding.js';

/** The bytes a source's rows came from. */
export type SourceIdentity =
  | {
      kind: 'file';
      /** absolute, so that a report written from another directory finds the file the run read */
      path: string;
      size: number;
      /** fs.Stats.mtimeMs, as read (sub-millisecond where the file system has it) */
      mtimeMs: number;
    }
  | { kind: 's3'; bucket: string; key: string; etag: string; size?: number };

/** How a source's rows were read: what `readCsv` and the column plan were given. */
export interface SourceReadOptions {
  encoding?: InputEncoding;
  columns: ColumnOptions;
}

export interface RememberedSource {
  /** the record's format */
  v: 1;
  identity: SourceIdentity;
  read: SourceReadOptions;
  /** the header as read (trimmed names, in file order): failed.csv's input columns for this source's rows */
  header: string[];
}

const identityRule = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('file'), path: z.string(), size: z.number(), mtimeMs: z.number() }),
  z.object({ kind: z.literal('s3'), bucket: z.string(), key: z.string(), etag: z.string(), size: z.number().optional() }),
]);

const recordRule = z.object({
  v: z.literal(1),
  identity: identityRule,
  read: z.object({
    encoding: z.enum(INPUT_ENCODINGS).optional(),
    columns: z.object({
      platform: z.enum(PLATFORMS).optional(),
      map: z.record(z.string(), z.string()).optional(),
      attributes: z.array(z.string()).optional(),
    }),
  }),
  header: z.array(z.string()),
});

export function encodeSourceRecord(record: RememberedSource): string {
  return JSON.stringify(record);
}

/** The record stored for a source, or undefined when it is not one this version can read. */
export function decodeSourceRecord(text: string): RememberedSource | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = recordRule.safeParse(json);
  if (!parsed.success) return undefined;
  const { identity, read, header } = parsed.data;
  const columns: ColumnOptions = {
    ...(read.columns.platform !== undefined ? { platform: read.columns.platform } : {}),
    ...(read.columns.map !== undefined ? { map: read.columns.map } : {}),
    ...(read.columns.attributes !== undefined ? { attributes: read.columns.attributes } : {}),
  };
  const s3Size = identity.kind === 's3' && identity.size !== undefined ? { size: identity.size } : {};
  return {
    v: 1,
    identity: identity.kind === 'file' ? identity : { kind: 's3', bucket: identity.bucket, key: identity.key, etag: identity.etag, ...s3Size },
    read: { columns, ...(read.encoding !== undefined ? { encoding: read.encoding } : {}) },
    header,
  };
}

/** How the source differs now from what the run read, in words; undefined when it is the same. */
export function identityChange(was: SourceIdentity, now: SourceIdentity): string | undefined {
  if (was.kind === 'file' && now.kind === 'file') {
    if (was.size !== now.size) return `it is ${now.size} bytes long, and was ${was.size} when the run read it`;
    if (was.mtimeMs !== now.mtimeMs) return `it was modified at ${isoOf(now.mtimeMs)}, after the run read it (modified at ${isoOf(was.mtimeMs)})`;
    return undefined;
  }
  if (was.kind === 's3' && now.kind === 's3') {
    if (was.etag !== now.etag) return `its ETag is ${now.etag}, and was ${was.etag} when the run read it`;
    if (was.size !== undefined && now.size !== undefined && was.size !== now.size) return `it is ${now.size} bytes long, and was ${was.size} when the run read it`;
    return undefined;
  }
  return 'it is not the same kind of source';
}

function isoOf(ms: number): string {
  return new Date(Math.floor(ms)).toISOString();
}
