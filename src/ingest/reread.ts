// Reads failed rows again from their sources: the ledger keeps a failed row's place (source and line) and its
// token fingerprint, not its cells; failed.csv and `retry` get the cells and the request body from here. So does
// superseded.csv its rows' users (the ledger keeps a superseded row's place and its carrier's, no fingerprint).
//
// A source is read again only when it is still the one the run read: a local file of the same size and mtime, an
// S3 object with the same ETag (checked with HeadObject before reading, and by If-Match while reading). Each row
// then goes through the very path of the ingest (readCsv → column plan → validate, with the options the run read
// the source with), and its token fingerprint must be the one the ledger holds for the row, when it holds one (a
// superseded row's place has none: the source's identity alone vouches for it). Anything else is an
// error that names the source and says what to do; a source is never read from a different file or object.
import type { ReceiptJobData } from '../types.js';
import { expiryPriority, rowPriority } from './tokenExpiry.js';
import { soonestActiveExpiry } from '../appstore/activeExpiry.js';
import { readAppleToken } from '../appstore/readToken.js';
import { isApplePlatform } from './surveyPass.js';
import { ConfigError } from '../config.js';
import { TOKEN_FINGERPRINT_BYTES, tokenFingerprint } from '../ledger/rowIdentity.js';
import { keyBytes } from '../ledger/rowRecord.js';
import { planColumns, type ColumnPlan } from './columns.js';
import { readCsvFile, type CsvItem } from './readCsv.js';
import { asRead, checkRow, type CheckedRow, type RowCheckOptions } from './rowCheck.js';
import { fileIdentity, type SourceDeps } from './sources.js';
import { decodeSourceRecord, identityChange, type RememberedSource, type SourceIdentity } from './sourceRecord.js';

/** A row's place, as the ledger keeps it, and its token fingerprint (recordKey) when the ledger has one. */
export interface SourcePlace {
  src: string;
  line: number;
  fp?: string;
}

/** A failed row's place, as the ledger keeps it, and its token fingerprint (recordKey). */
export interface RowPlace extends SourcePlace {
  fp: string;
}

/** A row read again: its cells, platform and body as ingest made them, or why it could not be. */
export type RereadRow<P extends SourcePlace = RowPlace> = ({ ok: true } & CheckedRow & { place: P }) | { ok: false; place: P; reason: string };

/** Why a source cannot be read again: it changed since the run read it, or this machine cannot reach it. */
export class SourceUnavailableError extends ConfigError {
  override name = 'SourceUnavailableError';

  constructor(
    readonly source: string,
    readonly why: 'changed' | 'unreachable' | 'unknown',
    message: string,
  ) {
    super(message);
  }
}

export interface RereadDeps extends SourceDeps {
  /** the clock a Google token's cut-off is decided with (tests); default Date.now */
  now?: () => number;
}

const RESTORE = 'restore the file the run read (same content and modification time)';

/**
 * Throws a SourceUnavailableError, naming the source and what to do, unless the source is still the one the run
 * read. `record`: what the run remembered of it (undefined: nothing, a run ingested before sources were recorded).
 */
export async function checkSource(source: string, record: RememberedSource | undefined, deps: RereadDeps = {}): Promise<void> {
  if (record === undefined) {
    throw new SourceUnavailableError(
      source,
      'unknown',
      `source ${source}: the run holds no record of how it was read (it was ingested by an older version), so its rows (failed, superseded) cannot be read again; run it again as a new run`,
    );
  }
  const was = record.identity;
  let now: SourceIdentity;
  try {
    now = await currentIdentity(was, deps);
  } catch (err) {
    throw new SourceUnavailableError(source, 'unreachable', unreachableMessage(source, was, err));
  }
  const change = identityChange(was, now);
  if (change !== undefined) {
    const what = was.kind === 'file' ? `${RESTORE}, or run the file as it is now as a new run` : 'put back the object the run read, or run the object as it is now as a new run';
    throw new SourceUnavailableError(
      source,
      'changed',
      `source ${source} changed since the run read it: ${change}; its rows (failed, superseded) cannot be read again exactly. ${capital(what)}`,
    );
  }
}

/**
 * Reads the rows at `places` (all of one source, any order) again, in line order, one result per place. Checks the
 * source first (checkSource: throws before anything is read). A row that is not what the run read (another token
 * at its line, a line past the end, a row that no longer validates) comes out with ok: false and the reason; an
 * I/O error while reading throws.
 */
export async function* rereadSource<P extends SourcePlace>(
  source: string,
  record: RememberedSource | undefined,
  places: readonly P[],
  deps: RereadDeps = {},
): AsyncGenerator<RereadRow<P>, void, undefined> {
  await checkSource(source, record, deps);
  const remembered = record as RememberedSource;
  const wanted = [...places].sort((a, b) => a.line - b.line);
  if (wanted.length === 0) return;
  const last = (wanted[wanted.length - 1] as P).line;
  const now = deps.now ?? Date.now;
  const { columns, encoding } = remembered.read;
  let at = 0;
  let plan: ColumnPlan | undefined;
  let planError: string | undefined;
  const items = openRemembered(remembered, deps, encoding);
  for await (const read of items) {
    if (read.line > last) break;
    // Places before this line that no item started at: the file no longer has a row there.
    while (at < wanted.length && (wanted[at] as P).line < read.line) yield missing(wanted[at++] as P, source);
    const item = asRead(read);
    if (item.kind === 'record' && plan === undefined && planError === undefined) {
      const planned = planColumns(item.columns, columns);
      if ('error' in planned) planError = planned.error;
      else plan = planned.plan;
    }
    while (at < wanted.length && (wanted[at] as P).line === read.line) {
      const place = wanted[at++] as P;
      yield rowAt(place, item, plan ?? planError ?? 'no header', source, { now, ...(columns.platform !== undefined ? { platform: columns.platform } : {}) });
    }
  }
  while (at < wanted.length) yield missing(wanted[at++] as P, source);
}

/** The row an item is, checked as ingest checks it (without the API-key check: the row was admitted). `plan`: the source's plan, or why it has none. */
function rowAt<P extends SourcePlace>(place: P, item: CsvItem, plan: ColumnPlan | string, source: string, opts: RowCheckOptions): RereadRow<P> {
  const fail = (reason: string): RereadRow<P> => ({ ok: false, place, reason: `${source} line ${place.line}: ${reason}` });
  if (item.kind === 'problem') return fail(`cannot be read now (${item.reason})`);
  if (typeof plan === 'string') return fail(`the file's columns cannot be used now (${plan})`);
  const checked = checkRow(item.values, plan, opts);
  if (!checked.ok) return fail(`no longer a valid row (${checked.reason})`);
  // A second user's row of one token has a record key one variant byte longer (admit-4.lua): the token's own
  // fingerprint is its first bytes.
  if (place.fp !== undefined && !tokenFingerprint(checked.row.platform, checked.row.body.fetch_token).equals(keyBytes(place.fp).subarray(0, TOKEN_FINGERPRINT_BYTES))) {
    return fail(`holds another receipt than the run read there: the source changed since the run read it; ${RESTORE}`);
  }
  return { ok: true, place, ...checked.row };
}

function missing<P extends SourcePlace>(place: P, source: string): RereadRow<P> {
  return { ok: false, place, reason: `${source} line ${place.line}: no row starts there any more: the source changed since the run read it; ${RESTORE}` };
}

/** The items of the source the record names (its absolute path, or bucket and key, read only while the ETag is the same). */
async function* openRemembered(record: RememberedSource, deps: RereadDeps, encoding: RememberedSource['read']['encoding']): AsyncGenerator<CsvItem, void, undefined> {
  const read = encoding === undefined ? {} : { encoding };
  const id = record.identity;
  if (id.kind === 'file') {
    yield* readCsvFile(id.path, read);
    return;
  }
  const { defaultS3Client, readS3Csv } = await import('./s3.js');
  const client = deps.s3 ?? defaultS3Client();
  yield* readS3Csv(client, id.bucket, id.key, { ...deps.s3Read, ifMatch: id.etag }, read);
}

async function currentIdentity(was: SourceIdentity, deps: RereadDeps): Promise<SourceIdentity> {
  if (was.kind === 'file') return fileIdentity(was.path);
  const { defaultS3Client, headS3Object } = await import('./s3.js');
  const head = await headS3Object(deps.s3 ?? defaultS3Client(), was.bucket, was.key);
  return { kind: 's3', bucket: was.bucket, key: was.key, etag: head.etag ?? '', ...(head.size === undefined ? {} : { size: head.size }) };
}

function unreachableMessage(source: string, was: SourceIdentity, err: unknown): string {
  if (was.kind === 'file') {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const what = code === 'ENOENT' ? `there is no file ${was.path} on this machine` : `${was.path} cannot be read here (${code ?? String(err)})`;
    return `source ${source} cannot be read again: ${what}. Run the command on the machine that ran the ingest, or ${RESTORE} at that path`;
  }
  const code = (err as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata?.httpStatusCode;
  const status = typeof code === 'number' ? code : undefined;
  const name = err instanceof Error ? err.name : undefined;
  const detail = err instanceof Error ? `${name ?? 'Error'}${status !== undefined ? ` (HTTP ${status})` : ''}: ${err.message}` : String(err);
  if (status === 404 || name === 'NotFound' || name === 'NoSuchKey') {
    return `source ${source} cannot be read again: the object is gone (${detail}). Put back the object the run read, or run what is there now as a new run`;
  }
  return `source ${source} cannot be read again from this machine (${detail}): check the AWS credentials, AWS_REGION and S3_ENDPOINT, or run the command where the run's S3 settings work`;
}

function capital(text: string): string {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

/**
 * A run's sources as it remembered them (ledger/sourceCatalog.ts), to read its failed rows (and superseded rows'
 * users) again: the header of each (failed.csv's input columns), the check that each is unchanged, and the rows at
 * given places.
 */
export class RunSources {
  constructor(
    private readonly records: ReadonlyMap<string, RememberedSource | undefined>,
    private readonly deps: RereadDeps = {},
  ) {}

  /** From the catalog's stored text (a record this version cannot read counts as none). */
  static of(stored: ReadonlyMap<string, string>, deps: RereadDeps = {}): RunSources {
    return new RunSources(new Map([...stored].map(([name, text]) => [name, decodeSourceRecord(text)])), deps);
  }

  /** Whether any source is an S3 object (the caller then gives an S3 client). */
  get onS3(): boolean {
    return [...this.records.values()].some((r) => r?.identity.kind === 's3');
  }

  /** The header the run read the source with; undefined when the run has no record of it. */
  header(source: string): readonly string[] | undefined {
    return this.records.get(source)?.header;
  }

  /** Throws a SourceUnavailableError unless the source is the one the run read (see checkSource). */
  check(source: string): Promise<void> {
    return checkSource(source, this.records.get(source), this.deps);
  }

  /** The rows at these places of one source, in line order (see rereadSource). */
  read<P extends SourcePlace>(source: string, places: readonly P[]): AsyncGenerator<RereadRow<P>, void, undefined> {
    return rereadSource(source, this.records.get(source), places, this.deps);
  }
}

/**
 * The job a row read again makes, as the ingester made it (retry, the reconcile pass). Priority is the one its
 * expiry gives (tokenExpiry.ts) when the row has one: a Google token's expiry column, an App Store token's active
 * subscription at `now`; a row without one keeps none.
 */
export function rereadJob(runId: string, read: Extract<RereadRow, { ok: true }>, now = Date.now()): ReceiptJobData {
  const { place, platform, body, input, expect, token_expiry, lookup } = read;
  const active = isApplePlatform(platform) && !lookup ? soonestActiveExpiry(readAppleToken(body.fetch_token), now) : undefined;
  return {
    run: runId,
    fp: place.fp,
    src: place.src,
    line: place.line,
    platform,
    body,
    input,
    ...(expect ? { expect } : {}),
    ...(token_expiry ? { token_expiry, priority: rowPriority(token_expiry) } : {}),
    ...(active !== undefined ? { priority: expiryPriority(active) } : {}),
    ...(lookup ? { lookup } : {}),
  };
}
