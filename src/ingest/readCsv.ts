// Streaming CSV reader: bytes → (gunzip) → line-ending normalisation → csv-parse → CsvItem.
//
// Design notes (the "why" behind the less obvious choices):
// - Line endings are normalised to LF *before* csv-parse (CRLF and lone CR become LF). csv-parse counts a CRLF
//   inside a quoted field as two lines, which would shift the line number of every later record; after the
//   normalisation one LF is one physical line. Embedded CRLFs inside quoted values therefore come out as LF.
// - Line numbers come from the `raw` text of each record, not from csv-parse's `info.lines`: raw holds the blank
//   lines skipped before the record, the record itself (embedded newlines included) and its terminating LF, so a
//   running counter gives the exact 1-based physical line on which each record starts.
// - Quotes: `relax_quotes` keeps a file readable after a bad quote (the next line is read normally). Because the
//   relaxed parser silently keeps text after a closing quote (`"abc"def`), each record that contains a quote is
//   re-checked against RFC 4180 and reported as a problem when a quoted field is not closed cleanly. A stray quote
//   inside an unquoted value (`12" pizza`) is unambiguous and accepted.
// - A quote that is never closed swallows the rest of the file: csv-parse reports it at the end; `skip_records_with_error`
//   + `on_skip` turn that into a problem instead of a stream error. A stream error would destroy the parser and lose the
//   records still in its buffer.
// - Record size: a RecordGuard between the normaliser and csv-parse follows csv-parse's own quoting rules to find where
//   each record ends, and hands csv-parse complete records only. A record over MAX_RECORD_BYTES bytes is never
//   buffered: its bytes are dropped and a one-field marker record with the same number of line breaks takes its
//   place, which becomes a problem at the record's line. So a 10 MB field costs one row, not the rest of the file
//   (csv-parse's own max_record_size cannot resume after the record), memory stays bounded even for a file with no
//   line break at all, and line numbers after it stay exact.
// - Invalid UTF-8: fields are decoded by csv-parse (invalid bytes become U+FFFD); a record with U+FFFD in any field
//   is a problem. A literal U+FFFD in a file is almost always the trace of an earlier bad conversion, so it is
//   reported the same way.
// - Other encodings (`encoding`: latin1, windows-1252, utf16le; see textEncoding.ts) are transcoded to UTF-8 by the
//   LineNormalizer with a streaming TextDecoder, so everything after it (and every line number) is the same as for a
//   UTF-8 file. A byte order mark wins over the option. A character the decoder cannot read (UTF-16 only) becomes
//   U+FFFD and is reported as "not valid <encoding>".
// - Separator: a comma, unless line 1 is Excel's `sep=X` hint (SeparatorHint), which is then dropped and the records
//   are counted from line 2; the RecordGuard, csv-parse and the quoting check all use that separator. csv-parse is
//   created only once the hint is decided, which is why the first bytes are pulled before it exists.
// - An unusable header (invalid UTF-8, an empty or duplicate name, over the size limit) is one problem at its line,
//   and the file is still read to the end: every non-blank record after it becomes a problem at its own line that
//   carries the header's reason, so no row goes without an outcome. A record that is itself oversized or opens a
//   quote that is never closed keeps its own reason (fixing the header would not make it readable).
// - Row text is never echoed into problems (it carries fetch tokens); only the header row's text goes into `raw`.
// - Quote-free records are split here, not by csv-parse: the RecordGuard hands out runs of complete records, and
//   until the first run that holds a quote (most exports never quote: base64 receipts, JWS, ids) each record is cut
//   at LF and at the separator and each field decoded on its own, as csv-parse does for unquoted text (a blank line
//   is a one-empty-field record, which RecordReader skips as it skips csv-parse's blank lines, counting the line).
//   csv-parse reads a byte at a time, about 40 MB/s: on 3-12 KB receipts it was most of `plan` and `ingest`, twice
//   over with the ingest's survey pass; Buffer.indexOf and toString are some 20 times faster. From the first run
//   holding a quote to the end of the file, every byte goes through csv-parse as before (one way: the records'
//   order stays the file's).

import { open } from 'node:fs/promises';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';
import type { CsvError } from 'csv-parse';
import { SeparatorHint } from './separatorHint.js';
import { decoderFor, ENCODING_NAME, type InputEncoding } from './textEncoding.js';

export type { InputEncoding } from './textEncoding.js';

/** How a file's text is read (the same for local files and S3 objects). */
export interface ReadCsvOptions {
  /** Text encoding of files without a byte order mark (default utf8). */
  encoding?: InputEncoding;
}

export interface CsvRecord {
  kind: 'record';
  source: string;
  /** 1-based physical line on which the record starts. */
  line: number;
  /** Header names, trimmed (the same array for every record of a file). */
  columns: string[];
  /** Cell text by column name, exactly as in the file (not trimmed). */
  values: Record<string, string>;
}

export interface CsvProblem {
  kind: 'problem';
  source: string;
  line: number;
  reason: string;
  /** Only set for header problems: data rows are not echoed because they carry fetch tokens. */
  raw?: string;
}

export type CsvItem = CsvRecord | CsvProblem;

/**
 * A record longer than this (in bytes of UTF-8, quotes and commas included) is refused: no receipt is that large, and
 * it is usually an unclosed quote eating the file. It is skipped as one problem; the rows after it are still read.
 */
export const MAX_RECORD_BYTES = 4 * 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const MAX_RAW_HEADER = 500;
/**
 * Bytes read from a local file at a time (and read ahead while the records before them are parsed). A `plan` of
 * 50,000 App Store rows (bench/README.md, ingestReceipts), reading on: 64 KB 8.7 s wall and 183 MiB max RSS,
 * 256 KB 7.7 s and 203 MiB, 1 MB 7.5 s and 239 MiB (V8 keeps more of the larger buffers between collections).
 */
const READ_CHUNK = 256 * 1024;
/** First cell of the record the RecordGuard puts in place of an oversized one (followed by `open` or `closed`). */
const OVERSIZED = '\u0000rc-migrate:oversized-record:';

/**
 * Streams one CSV from a Readable (already opened); `source` is the name used in line references.
 * `gzip`: true gunzips, false reads as is, undefined (default) gunzips when the data starts with the gzip magic.
 */
export function readCsvStream(
  input: NodeJS.ReadableStream,
  source: string,
  opts: ReadCsvOptions & { gzip?: boolean; maxRecordBytes?: number; /** false: every record through csv-parse (tests compare the two) */ splitQuoteFree?: boolean } = {},
): AsyncIterable<CsvItem> {
  return iterateCsv(input, source, opts.gzip, opts.maxRecordBytes ?? MAX_RECORD_BYTES, opts.encoding ?? 'utf8', opts.splitQuoteFree ?? true);
}

/** Opens a local file path (gunzips when the name ends in .gz, or when the first bytes are the gzip magic) and streams it. */
export async function* readCsvFile(path: string, opts: ReadCsvOptions = {}): AsyncGenerator<CsvItem, void, undefined> {
  const { stream, gzip } = await openCsvFile(path);
  yield* iterateCsv(stream, path, gzip, MAX_RECORD_BYTES, opts.encoding ?? 'utf8', true);
}

/** The file's byte stream (closed when it ends or is destroyed), and whether it is gzip (by its name or its first two bytes). */
async function openCsvFile(path: string): Promise<{ stream: NodeJS.ReadableStream; gzip: boolean }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new Error(`cannot open CSV file "${path}": ${messageOf(err)}`, { cause: err });
  }
  let head: Buffer;
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await handle.read(buf, 0, 2, 0);
    head = buf.subarray(0, bytesRead);
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw new Error(`cannot read CSV file "${path}": ${messageOf(err)}`, { cause: err });
  }
  // autoClose (default) closes the handle when the stream ends or is destroyed. Reads of READ_CHUNK bytes: with
  // the default 64 KB the reader waited on a read every few receipts (a thread-pool round trip each time).
  return { stream: handle.createReadStream({ start: 0, highWaterMark: READ_CHUNK }), gzip: path.toLowerCase().endsWith('.gz') || isGzipMagic(head) };
}

// ---------------------------------------------------------------------------------------------------------------

interface ReadContext {
  /** Set when the underlying input failed (an I/O error: rethrown, never turned into a problem). */
  ioError?: unknown;
  /** A problem found below the CSV layer (gzip), reported after the records read before it. */
  endProblem?: { line: number; reason: string };
}

/** A record as csv-parse gives it: its fields and its raw text (blank lines before it, the record, its LF). */
interface ParsedRecord {
  record: string[];
  raw: string;
}
/**
 * A record cut by quoteFreeRecords: its text is not decoded a second time as `raw` (a receipt is most of it),
 * since a quote-free record's line breaks are known (one LF at its end, none before it but a blank line's own);
 * `text` decodes it when it is needed (a header's problem).
 */
interface QuoteFreeRecord {
  record: string[];
  /** LFs before the record's text: 1 for a blank line, else 0 */
  leading: number;
  /** LFs in the record's text and its end: 1, or 0 for a last record without one */
  lines: number;
  text: () => string;
}
interface SkipMarker {
  skip: CsvError;
}

/** bytes → records → items: the reader's steps, each below. */
async function* iterateCsv(
  input: NodeJS.ReadableStream,
  source: string,
  gzip: boolean | undefined,
  maxRecordBytes: number,
  encoding: InputEncoding,
  splitQuoteFree: boolean,
): AsyncGenerator<CsvItem, void, undefined> {
  const ctx: ReadContext = {};
  const normalizer = new LineNormalizer(encoding);
  const hint = new SeparatorHint();
  const chunks = byteSource(input, gzip, normalizer, hint, maxRecordBytes, ctx);
  const runs = await hintedBytes(chunks, source, ctx);
  const records = new RecordReader(source, hint, normalizer.textName, maxRecordBytes);
  let parser: ReturnType<typeof parse> | undefined;
  let bytes: Readable | undefined;
  try {
    const hintProblem = records.hintProblem();
    if (hintProblem !== undefined) yield hintProblem;
    // Runs of complete quote-free records are split here (see the notes at the top), until the first with a quote.
    let quoted: Buffer | undefined;
    for (;;) {
      const run = await runs.next();
      if (run.done === true) break;
      if (!splitQuoteFree || run.value.includes(QUOTE)) {
        quoted = run.value;
        break;
      }
      for (const parsed of quoteFreeRecords(run.value, hint.delimiter)) {
        const item = records.next(parsed);
        if (item !== undefined) yield item;
      }
    }
    if (quoted !== undefined) {
      const first = quoted;
      bytes = Readable.from(
        (async function* () {
          yield first;
          yield* runs;
        })(),
        { objectMode: false },
      );
      parser = csvParser(hint.delimiter);
      pipeline(bytes, parser, () => {
        // Errors surface through the async iteration below (or are I/O errors tracked in ctx).
      });
      for await (const parsed of parser as AsyncIterable<ParsedRecord | SkipMarker>) {
        const item = records.next(parsed);
        if (item !== undefined) yield item;
        if (records.ended) break; // every parse error csv-parse reports in this configuration ends the readable part of the file
      }
    }
  } catch (err) {
    if (ctx.ioError !== undefined) throw readFailure(source, ctx.ioError);
    if (!isCsvError(err)) throw err;
    yield records.problem(records.nextLine, `could not be parsed (${err.message}); the rest of the file was not read`);
  } finally {
    parser?.destroy();
    bytes?.destroy();
    runs.return().catch(() => undefined);
    // Also when the reading stopped before the stream above pulled from the byte source: its input is closed.
    chunks.return().catch(() => undefined);
  }
  if (ctx.endProblem !== undefined) yield records.problem(ctx.endProblem.line, ctx.endProblem.reason);
}

/**
 * The byte source, once its first bytes are out: the byte source hands them out (or ends) only once line 1 is known
 * to be a separator hint or not, and the records can only be split (or the parser made) with the separator.
 */
async function hintedBytes(chunks: AsyncGenerator<Buffer, void, undefined>, source: string, ctx: ReadContext): Promise<AsyncGenerator<Buffer, void, undefined>> {
  let first: IteratorResult<Buffer, void>;
  try {
    first = await chunks.next();
  } catch (err) {
    await chunks.return();
    throw ctx.ioError !== undefined ? readFailure(source, ctx.ioError) : err;
  }
  return (async function* () {
    if (first.done !== true) yield first.value;
    yield* chunks;
  })();
}

/**
 * The records of a run of complete records holding no quote, as csv-parse gives them for this reader's options:
 * cut at each LF and at each separator, each field decoded on its own (invalid UTF-8 becomes U+FFFD in that field,
 * and every field is a string of its own, not a slice that would keep the run's text alive); its line breaks
 * counted, its text decoded only if asked for. A blank line is a record of one empty field. The last record of a file may lack its LF.
 */
function* quoteFreeRecords(run: Buffer, delimiter: string): Generator<QuoteFreeRecord, void, undefined> {
  const separator = delimiter.charCodeAt(0);
  const n = run.length;
  let at = 0;
  let nextSeparator = run.indexOf(separator);
  while (at < n) {
    const lf = run.indexOf(LF, at);
    const end = lf === -1 ? n : lf;
    const record: string[] = [];
    let from = at;
    while (nextSeparator !== -1 && nextSeparator < end) {
      record.push(run.toString('utf8', from, nextSeparator));
      from = nextSeparator + 1;
      nextSeparator = run.indexOf(separator, from);
    }
    record.push(run.toString('utf8', from, end));
    const start = at;
    yield { record, leading: lf === at ? 1 : 0, lines: lf === -1 ? 0 : 1, text: () => run.toString('utf8', start, lf === -1 ? n : lf + 1) };
    at = end + 1;
  }
}

/** csv-parse, for complete records with this separator; a record it must skip comes out as a SkipMarker, in order. */
function csvParser(delimiter: string): ReturnType<typeof parse> {
  const parser: ReturnType<typeof parse> = parse({
    delimiter,
    record_delimiter: '\n',
    bom: false, // the normaliser strips byte order marks
    relax_quotes: true,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    raw: true,
    max_record_size: 0, // the RecordGuard enforces the limit (csv-parse could not resume after an oversized record)
    on_skip: (err) => {
      // Called synchronously while parsing: pushing keeps the problem in order with the records around it.
      if (err !== undefined) parser.push({ skip: err } satisfies SkipMarker);
      return undefined;
    },
  });
  return parser;
}

/**
 * What each parsed record of one file is: a skipped record, the RecordGuard's stand-in for an oversized one, a blank
 * line, the header, or a data row (checked for quoting, field count and encoding). Keeps the physical line count.
 */
class RecordReader {
  /** physical line on which the next raw text starts (after a separator hint) */
  nextLine: number;
  /** a parse error ended the readable part of the file */
  ended = false;
  private columns: string[] | undefined;
  /** Set when the header row is unusable: every later row is then a problem carrying this reason. */
  private headerUnusable: string | undefined;
  private readonly delimiter: string;

  constructor(
    private readonly source: string,
    private readonly hint: SeparatorHint,
    private readonly textName: string,
    private readonly maxRecordBytes: number,
  ) {
    this.nextLine = 1 + hint.lines;
    this.delimiter = hint.delimiter;
  }

  problem(line: number, reason: string, raw?: string): CsvProblem {
    return raw === undefined ? { kind: 'problem', source: this.source, line, reason } : { kind: 'problem', source: this.source, line, reason, raw };
  }

  /** A hint that cannot be honoured: the file's columns are unknown, so it is treated as an unusable header. */
  hintProblem(): CsvProblem | undefined {
    const found = this.hint.problem;
    if (found === undefined) return undefined;
    this.headerUnusable = found.reason;
    return this.problem(1, found.reason, clip(found.raw, MAX_RAW_HEADER));
  }

  /** The item a parsed record is, if any (blank lines and the header are none). */
  next(parsed: ParsedRecord | QuoteFreeRecord | SkipMarker): CsvItem | undefined {
    if ('skip' in parsed) return this.skipped(parsed.skip);
    const { record } = parsed;
    const raw = 'raw' in parsed ? parsed.raw : undefined;
    const line = this.nextLine + (raw === undefined ? (parsed as QuoteFreeRecord).leading : leadingNewlines(raw));
    this.nextLine += raw === undefined ? (parsed as QuoteFreeRecord).lines : countNewlines(raw);
    const only = record.length === 1 ? record[0] : undefined;
    if (only !== undefined && only.startsWith(OVERSIZED)) return this.oversized(line, only.startsWith(`${OVERSIZED}open`));
    if (record.every((f) => f.trim() === '')) return undefined; // blank line, whitespace or only commas
    if (this.headerUnusable !== undefined) {
      // No row is dropped silently: each one after a bad header is reported at its own line (text not echoed).
      return this.problem(line, `not read: the header of this file is unusable (${this.headerUnusable})`);
    }
    if (this.columns === undefined) return this.header(record, raw ?? (parsed as QuoteFreeRecord).text(), line);
    return this.row(record, raw, line, this.columns);
  }

  private skipped(err: CsvError): CsvProblem {
    this.ended = true;
    const raw = typeof err.raw === 'string' ? err.raw : '';
    const line = this.nextLine + leadingNewlines(raw);
    if (err.code === 'CSV_QUOTE_NOT_CLOSED') {
      return this.problem(line, 'a quoted field opened in this row is never closed, so the rest of the file could not be read; fix the quotes in this row');
    }
    return this.problem(line, `this row could not be parsed (${err.message}); the rest of the file was not read`);
  }

  /** The RecordGuard's stand-in for a record over the limit (see RecordGuard). */
  private oversized(line: number, unclosed: boolean): CsvProblem {
    const max = this.maxRecordBytes;
    if (this.columns === undefined && this.headerUnusable === undefined) {
      // the rows after it (if any) are each reported as rows after an unusable header
      this.headerUnusable = `the header row is longer than ${max} bytes${unclosed ? ' and a quote in it is never closed' : ''}, so this is not a CSV file with a header row; check that it is the right file`;
      return this.problem(line, this.headerUnusable);
    }
    // Also after an unusable header: this row's own size is what ends or skips it, whatever the header.
    return this.problem(
      line,
      unclosed
        ? `this row is longer than ${max} bytes because a quoted field opened in it is never closed, so the rest of the file could not be read; fix the quotes in this row`
        : `this row is longer than ${max} bytes, more than any receipt needs, so it was skipped (the rows after it were read); shorten or remove it`,
    );
  }

  private header(record: string[], raw: string, line: number): CsvProblem | undefined {
    const names = record.map((f) => f.trim());
    const headerProblem = checkHeader(names, this.textName);
    if (headerProblem !== undefined) {
      this.headerUnusable = headerProblem;
      return this.problem(line, headerProblem, clip(raw.replace(/^\n+|\n$/g, ''), MAX_RAW_HEADER));
    }
    this.columns = names;
    return undefined;
  }

  /** `raw` undefined: a quote-free record, which has no quoting to check. */
  private row(record: string[], raw: string | undefined, line: number, columns: string[]): CsvItem {
    const quoting = raw === undefined ? undefined : quotingProblem(raw, this.delimiter);
    if (quoting !== undefined) return this.problem(line, quoting);
    if (record.length !== columns.length) {
      return this.problem(
        line,
        `has ${record.length} field${record.length === 1 ? '' : 's'}, header has ${columns.length}; check this row's quoting and ${separatorWord(this.delimiter)}`,
      );
    }
    const badIndex = record.findIndex((f) => f.includes('\uFFFD'));
    if (badIndex !== -1) return this.problem(line, `not valid ${this.textName} (column "${columns[badIndex]}"); ${encodingAdvice(this.textName)}`);
    return { kind: 'record', source: this.source, line, columns, values: Object.fromEntries(columns.map((c, i) => [c, record[i] ?? ''])) };
  }
}

/** Produces normalised bytes (complete records only until the end) from the input, gunzipping when asked or sniffed. */
async function* byteSource(
  input: NodeJS.ReadableStream,
  gzip: boolean | undefined,
  normalizer: LineNormalizer,
  hint: SeparatorHint,
  maxRecordBytes: number,
  ctx: ReadContext,
): AsyncGenerator<Buffer, void, undefined> {
  const it = (input as AsyncIterable<string | Buffer>)[Symbol.asyncIterator]();
  let done = false;
  // normaliser → separator hint → record guard; the guard is made once the hint has decided the separator.
  let guard: RecordGuard | undefined;
  const feed = (normalized: Buffer): Buffer[] => {
    const passed = hint.push(normalized);
    if (!hint.decided) return passed.length > 0 ? [passed] : [];
    guard ??= new RecordGuard(maxRecordBytes, hint.delimiter);
    return guard.push(passed);
  };
  const finish = (): Buffer[] => {
    const last = feed(normalizer.finish());
    const rest = hint.finish();
    guard ??= new RecordGuard(maxRecordBytes, hint.delimiter);
    return [...last, ...guard.push(rest), ...guard.finish()];
  };
  const next = async (): Promise<Buffer | undefined> => {
    let r: IteratorResult<string | Buffer>;
    try {
      r = await it.next();
    } catch (err) {
      ctx.ioError = err;
      throw err;
    }
    if (r.done === true) {
      done = true;
      return undefined;
    }
    // a stream's chunk is the reader's to keep (a Buffer is taken as it is; a plain Uint8Array viewed, not copied)
    const value = r.value as string | Uint8Array;
    if (typeof value === 'string') return Buffer.from(value, 'utf8');
    return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  };

  try {
    // Enough bytes to recognise a gzip magic or a byte order mark.
    let head = Buffer.alloc(0);
    while (head.length < 4) {
      const chunk = await next();
      if (chunk === undefined) break;
      head = Buffer.concat([head, chunk]);
    }
    if (head.length === 0) return; // empty file: nothing at all

    if (!(gzip ?? isGzipMagic(head))) {
      yield* feed(normalizer.push(head));
      for (let chunk = await next(); chunk !== undefined; chunk = await next()) yield* feed(normalizer.push(chunk));
      yield* finish();
      return;
    }

    const gunzip = createGunzip();
    const compressed = Readable.from(
      (async function* () {
        yield head;
        for (let chunk = await next(); chunk !== undefined; chunk = await next()) yield chunk;
      })(),
      { objectMode: false },
    );
    pipeline(compressed, gunzip, () => undefined);
    try {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) yield* feed(normalizer.push(chunk));
    } catch (err) {
      if (ctx.ioError !== undefined) throw ctx.ioError instanceof Error ? ctx.ioError : new Error(messageOf(ctx.ioError));
      // The partial last record is dropped (it may hold half a token); say where reading stopped.
      const emittedLines = hint.lines + (guard?.linesEmitted ?? 0);
      const line = emittedLines + 1;
      const code = (err as { code?: unknown }).code;
      if (code === 'Z_BUF_ERROR') {
        ctx.endProblem = {
          line,
          reason: `the gzip data is truncated: reading stopped at line ${line}, so that line and everything after it are missing; re-download or re-create the file`,
        };
      } else if ((guard?.bytesEmitted ?? 0) === 0 && emittedLines === 0) {
        ctx.endProblem = { line: 1, reason: `the file is not valid gzip data (${messageOf(err)}); nothing was read` };
      } else {
        ctx.endProblem = { line, reason: `the gzip data is corrupt (${messageOf(err)}): reading stopped at line ${line}; that line and everything after it were not read` };
      }
      return;
    }
    yield* finish();
  } finally {
    if (!done) await it.return?.();
  }
}

/**
 * Turns a byte stream into UTF-8 with LF line endings. Strips a UTF-8 byte order mark; transcodes UTF-16 (with a byte
 * order mark), or the encoding given, to UTF-8. Holds nothing back but a CR whose LF may follow (the RecordGuard keeps
 * records whole) and what the decoder holds of a character split across chunks.
 */
class LineNormalizer {
  private started = false;
  /** The first bytes, held until there are enough to recognise a byte order mark (gunzip can hand out 1 byte). */
  private head: Buffer = Buffer.alloc(0);
  private pendingCR = false;
  private decoder?: InstanceType<typeof TextDecoder>;
  /** The encoding option decides how the text is read (no byte order mark overrode it). */
  private byOption = false;

  constructor(private readonly encoding: InputEncoding) {}

  /**
   * The encoding named in reasons: the one given, when the file was read in it; otherwise UTF-8 (also for a file
   * read as UTF-16 because of its byte order mark, whose advice stays "save the file as UTF-8").
   */
  get textName(): string {
    return this.byOption ? ENCODING_NAME[this.encoding] : ENCODING_NAME.utf8;
  }

  push(chunk: Buffer): Buffer {
    let data = chunk;
    if (!this.started) {
      data = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
      if (data.length < 3) {
        this.head = data;
        return Buffer.alloc(0);
      }
      data = this.start(data);
    }
    if (this.decoder !== undefined) data = Buffer.from(this.decoder.decode(data, { stream: true }), 'utf8');
    return this.fixLineEndings(data);
  }

  finish(): Buffer {
    let out: Buffer = Buffer.alloc(0);
    if (!this.started && this.head.length > 0) out = this.push(this.start(this.head)); // a file of 1 or 2 bytes
    if (this.decoder !== undefined) out = Buffer.concat([out, this.fixLineEndings(Buffer.from(this.decoder.decode(), 'utf8'))]);
    if (this.pendingCR) out = Buffer.concat([out, Buffer.from([LF])]);
    this.pendingCR = false;
    return out;
  }

  /** Recognises and strips a byte order mark at the start of the data; without one, the encoding given decides. */
  private start(data: Buffer): Buffer {
    this.started = true;
    this.head = Buffer.alloc(0);
    if (data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) return data.subarray(3);
    if (data[0] === 0xff && data[1] === 0xfe)
      this.decoder = new TextDecoder('utf-16le'); // the decoder drops the mark
    else if (data[0] === 0xfe && data[1] === 0xff) this.decoder = new TextDecoder('utf-16be');
    else {
      this.decoder = decoderFor(this.encoding);
      this.byOption = this.decoder !== undefined;
    }
    return data;
  }

  /** CRLF → LF and lone CR → LF, including a CRLF split across chunks. */
  private fixLineEndings(data: Buffer): Buffer {
    if (!this.pendingCR && data.indexOf(CR) === -1) return data;
    const out = Buffer.allocUnsafe(data.length + 1);
    let n = 0;
    for (let i = 0; i < data.length; i++) {
      const byte = data[i] as number;
      if (this.pendingCR) {
        this.pendingCR = false;
        out[n++] = LF;
        if (byte === LF) continue;
      }
      if (byte === CR) this.pendingCR = true;
      else out[n++] = byte;
    }
    return out.subarray(0, n);
  }
}

/**
 * Sits between the LineNormalizer and csv-parse: passes on complete records only (the unterminated last one is held
 * until more data or finish(), so a truncated gzip never yields half a row), and replaces a record longer than `max`
 * bytes by a marker record without ever holding it: `"<OVERSIZED>closed<LFs>"` with the dropped record's line breaks,
 * so csv-parse's line accounting is unchanged, or `…open…` when the file ended inside its quotes.
 *
 * Where a record ends follows csv-parse's rules for this reader's options (delimiter `,` or the hinted one, quote and
 * escape `"`, record delimiter LF, relax_quotes, no trimming): a quote opens a quoted field only as the field's first
 * byte (otherwise it is a literal); inside quotes `""` is a literal quote, and a quote followed by `,`, LF, NUL or the end closes the
 * field, while one followed by anything else also ends the quoting (relaxed) and is kept as text; a LF outside quotes
 * ends the record. Only the size of records depends on this; if the two ever disagreed, csv-parse would still read
 * what it is given.
 */
class RecordGuard {
  /** Line breaks and bytes passed on so far (a truncated gzip reports the first line not passed on). */
  linesEmitted = 0;
  bytesEmitted = 0;
  private quoting = false;
  /** Quoting, and the last byte seen was a quote whose meaning depends on the next byte. */
  private quotePending = false;
  /** Not quoting, and the current field has no byte yet (so a quote here opens a quoted field). */
  private fieldStart = true;
  /** The current record's bytes from earlier chunks (copies), while it is within the limit. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The current record went over the limit: its bytes are dropped, only its line breaks are counted. */
  private dropping = false;
  private droppedLines = 0;

  /** The separator's byte (an ASCII character). */
  private readonly delimiter: number;

  constructor(
    private readonly max: number,
    delimiter: string,
  ) {
    this.delimiter = delimiter.charCodeAt(0);
  }

  /** The complete records the chunk ends, in one or more runs (parts of the chunk itself where it can). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const n = chunk.length;
    let start = 0; // where the current record's bytes in this chunk begin
    let runFrom = 0; // start of the complete records of this chunk not yet put in `out`
    // Indexes of the next quote and LF at or after i (-1: none left; -2: not looked for yet), each searched for
    // again only once passed, so a long line full of quotes is still scanned in linear time.
    let nextQuote = -2;
    let nextLF = -2;
    let i = 0;
    while (i < n) {
      if (this.quotePending) {
        this.quotePending = false;
        if (chunk[i] === QUOTE) {
          i++; // "" inside quotes: a literal quote, still quoting
          continue;
        }
        // The quote closed the field (before `,` LF NUL) or, relaxed, ended the quoting as text; this byte is outside.
        this.quoting = false;
        this.fieldStart = false;
      }
      if (nextQuote !== -1 && nextQuote < i) nextQuote = chunk.indexOf(QUOTE, i);
      if (this.quoting) {
        if (nextQuote === -1) break; // the rest of the chunk is inside the quotes
        this.quotePending = true;
        i = nextQuote + 1;
        continue;
      }
      if (nextLF !== -1 && nextLF < i) nextLF = chunk.indexOf(LF, i);
      const lf = nextLF;
      if (nextQuote !== -1 && (lf === -1 || nextQuote < lf)) {
        // Between i and the quote there is no LF, so the byte before it (if in this chunk) tells whether it starts a field.
        const atFieldStart = nextQuote === i ? this.fieldStart : chunk[nextQuote - 1] === this.delimiter;
        if (atFieldStart) this.quoting = true;
        else this.fieldStart = false;
        i = nextQuote + 1;
        continue;
      }
      if (lf === -1) {
        this.fieldStart = chunk[n - 1] === this.delimiter;
        break;
      }
      // The record ends with this LF.
      const end = lf + 1;
      if (this.dropping || this.heldBytes + (lf - start) > this.max) {
        if (start > runFrom) out.push(chunk.subarray(runFrom, start));
        const lines = this.droppedLines + countLF(this.held) + countLF([chunk.subarray(start, end)]);
        out.push(oversizedMarker(lines - 1, true, false));
        runFrom = end;
      } else if (this.held.length > 0) {
        // the record's start and its end, joined on their own: the complete records after it stay in the chunk,
        // uncopied (joining the whole run copied every byte of the file once more)
        out.push(Buffer.concat([...this.held, chunk.subarray(start, end)]));
        runFrom = end;
      }
      this.resetRecord();
      this.fieldStart = true;
      start = end;
      i = end;
    }
    if (start > runFrom) out.push(chunk.subarray(runFrom, start));
    if (start < n) {
      const rest = chunk.subarray(start);
      if (this.dropping) {
        this.droppedLines += countLF([rest]);
      } else {
        this.held.push(Buffer.from(rest));
        this.heldBytes += rest.length;
        if (this.heldBytes > this.max) {
          this.dropping = true;
          this.droppedLines = countLF(this.held);
          this.held = [];
        }
      }
    }
    return this.emitted(out);
  }

  /** The last record (without a final LF), or its marker. */
  finish(): Buffer[] {
    if (this.quotePending) {
      this.quotePending = false;
      this.quoting = false; // a quote at the very end closes its field
    }
    const out = this.dropping || this.heldBytes > this.max ? [oversizedMarker(this.droppedLines + countLF(this.held), false, this.quoting)] : [Buffer.concat(this.held)];
    this.resetRecord();
    return this.emitted(out);
  }

  private resetRecord(): void {
    this.held = [];
    this.heldBytes = 0;
    this.dropping = false;
    this.droppedLines = 0;
  }

  private emitted(parts: Buffer[]): Buffer[] {
    const out = parts.filter((part) => part.length > 0);
    for (const part of out) this.bytesEmitted += part.length;
    this.linesEmitted += countLF(out);
    return out;
  }
}

/** The record put in place of an oversized one: one quoted field holding `lines` line breaks. */
function oversizedMarker(lines: number, terminated: boolean, unclosed: boolean): Buffer {
  return Buffer.from(`"${OVERSIZED}${unclosed ? 'open' : 'closed'}${'\n'.repeat(lines)}"${terminated ? '\n' : ''}`, 'utf8');
}

function countLF(parts: Buffer[]): number {
  let n = 0;
  for (const buf of parts) for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, i + 1)) n++;
  return n;
}

function checkHeader(names: string[], textName: string): string | undefined {
  const bad = names.findIndex((n) => n.includes('\uFFFD'));
  if (bad !== -1) return `the header row is not valid ${textName} (column ${bad + 1}); ${encodingAdvice(textName)}`;
  const empty = names.indexOf('');
  if (empty !== -1) return `column ${empty + 1} of the header has no name; name it or delete the column`;
  const seen = new Map<string, number>();
  for (const [i, name] of names.entries()) {
    const first = seen.get(name);
    if (first !== undefined) return `column "${name}" appears twice in the header (columns ${first + 1} and ${i + 1}); rename or remove one`;
    seen.set(name, i);
  }
  return undefined;
}

/**
 * RFC 4180 check of one record's raw text, for what the relaxed parser lets through: text after the closing
 * quote of a quoted field. Returns a short description, or undefined when the quoting is sound.
 */
function quotingProblem(raw: string, delimiter: string): string | undefined {
  if (!raw.includes('"')) return undefined;
  const text = raw.replace(/^\n+/, '').replace(/\n$/, '');
  let field = 1;
  let i = 0;
  while (i <= text.length) {
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) return `the quoted field ${field} is not closed`;
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            i += 2;
            continue;
          }
          i++;
          break;
        }
        i++;
      }
      if (i < text.length && text[i] !== delimiter) return `field ${field} has text after its closing quote; quote the whole value and double any quote inside it ("")`;
    } else {
      while (i < text.length && text[i] !== delimiter) i++;
    }
    i++; // past the comma (or past the end)
    field++;
  }
  return undefined;
}

/** What to do about text that is not valid in the encoding it was read in. */
function encodingAdvice(textName: string): string {
  return textName === ENCODING_NAME.utf8 ? 'save the file as UTF-8' : `check that the file is ${textName}, or pass the --encoding it was saved in`;
}

/** "commas", or the hinted separator, as a ragged row's advice names it. */
function separatorWord(delimiter: string): string {
  if (delimiter === ',') return 'commas';
  return delimiter === '\t' ? 'tabs' : `"${delimiter}" separators`;
}

function leadingNewlines(raw: string): number {
  let n = 0;
  while (raw.charCodeAt(n) === LF) n++;
  return n;
}

function countNewlines(raw: string): number {
  let n = 0;
  for (let i = raw.indexOf('\n'); i !== -1; i = raw.indexOf('\n', i + 1)) n++;
  return n;
}

function isGzipMagic(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

function isCsvError(err: unknown): err is CsvError {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && (code.startsWith('CSV_') || code === 'INVALID_OPENING_QUOTE');
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** The input itself failed (an I/O error, never a problem of the file): an Error naming the source, caused by it. */
function readFailure(source: string, ioError: unknown): Error {
  return new Error(`error reading "${source}": ${messageOf(ioError)}`, { cause: ioError });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
