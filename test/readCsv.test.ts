import { mkdtemp, readFile as readBytes, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planColumns, PLATFORM_COLUMN_NAMES, type ColumnPlan } from '../src/ingest/columns.js';
import { MAX_RECORD_BYTES, readCsvFile, readCsvStream, type CsvItem, type CsvProblem, type CsvRecord } from '../src/ingest/readCsv.js';
import { generate } from './hostile/make.mjs';
import { until } from './support/until.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rc-migrate-readcsv-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string, content: string | Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

async function collect(items: AsyncIterable<CsvItem>): Promise<CsvItem[]> {
  const out: CsvItem[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function readFile(name: string, content: string | Buffer): Promise<CsvItem[]> {
  return collect(readCsvFile(await fixture(name, content)));
}

/** Compact view: [line, values] for records, [line, 'problem', reason] for problems. */
function view(items: CsvItem[]): unknown[] {
  return items.map((i) => (i.kind === 'record' ? [i.line, i.values] : [i.line, 'problem', i.reason]));
}

/** The reason given to each row after an unusable header. */
const notRead = (headerReason: string): string => `not read: the header of this file is unusable (${headerReason})`;

const records = (items: CsvItem[]): CsvRecord[] => items.filter((i): i is CsvRecord => i.kind === 'record');
const problems = (items: CsvItem[]): CsvProblem[] => items.filter((i): i is CsvProblem => i.kind === 'problem');

describe('readCsvFile: structure and line numbers', () => {
  it('reads a plain file, trims header names, keeps cell text as is and names the source', async () => {
    const path = await fixture('plain.csv', ' app_user_id , receipt \nu1, tok1 \nu2,tok2\n');
    const items = await collect(readCsvFile(path));
    expect(items).toEqual([
      { kind: 'record', source: path, line: 2, columns: ['app_user_id', 'receipt'], values: { app_user_id: 'u1', receipt: ' tok1 ' } },
      { kind: 'record', source: path, line: 3, columns: ['app_user_id', 'receipt'], values: { app_user_id: 'u2', receipt: 'tok2' } },
    ]);
  });

  it('gives the line a record STARTS on when a quoted field spans lines, and counts it for later records', async () => {
    const csv = 'a,b,c\n1,"two\nlines",x\n2,"three\n\nlines",y\n3,plain,z\n';
    const items = await readFile('multiline.csv', csv);
    expect(view(items)).toEqual([
      [2, { a: '1', b: 'two\nlines', c: 'x' }],
      [4, { a: '2', b: 'three\n\nlines', c: 'y' }],
      [7, { a: '3', b: 'plain', c: 'z' }],
    ]);
  });

  it('handles embedded quotes ("") and delimiters inside quotes', async () => {
    const items = await readFile('quotes.csv', 'a,b\n"say ""hi""","x,y"\n');
    expect(view(items)).toEqual([[2, { a: 'say "hi"', b: 'x,y' }]]);
  });

  it('reads CRLF files, including a CRLF inside a quoted field, with correct line numbers', async () => {
    const csv = 'a,b\r\n1,"x\r\ny"\r\n\r\n2,z\r\n';
    const items = await readFile('crlf.csv', csv);
    expect(view(items)).toEqual([
      [2, { a: '1', b: 'x\ny' }],
      [5, { a: '2', b: 'z' }],
    ]);
  });

  it('reads old Mac CR-only line endings', async () => {
    const items = await readFile('cr.csv', 'a,b\r1,2\r3,4');
    expect(view(items)).toEqual([
      [2, { a: '1', b: '2' }],
      [3, { a: '3', b: '4' }],
    ]);
  });

  it('strips a UTF-8 BOM so the first header name is clean', async () => {
    const items = await readFile('bom.csv', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('app_user_id,receipt\nu1,t1\n')]));
    expect(records(items)[0]?.columns).toEqual(['app_user_id', 'receipt']);
    expect(records(items)[0]?.values).toEqual({ app_user_id: 'u1', receipt: 't1' });
  });

  it('reads UTF-16LE files that start with a BOM', async () => {
    const text = Buffer.from('a,b\r\nü1,"x\r\ny"\r\n3,4\r\n', 'utf16le');
    const items = await readFile('utf16.csv', Buffer.concat([Buffer.from([0xff, 0xfe]), text]));
    expect(view(items)).toEqual([
      [2, { a: 'ü1', b: 'x\ny' }],
      [4, { a: '3', b: '4' }],
    ]);
  });

  it('skips blank lines (also whitespace-only and comma-only ones) without shifting line numbers', async () => {
    const items = await readFile('blank.csv', '\n\na,b\n\n1,2\n   \n,\n\n3,4\n\n');
    expect(view(items)).toEqual([
      [5, { a: '1', b: '2' }],
      [9, { a: '3', b: '4' }],
    ]);
  });

  it('reads a last line without a newline', async () => {
    const items = await readFile('nonl.csv', 'a,b\n1,2');
    expect(view(items)).toEqual([[2, { a: '1', b: '2' }]]);
  });

  it('yields nothing for an empty file, a header-only file, or a file of blank lines', async () => {
    expect(await readFile('empty.csv', '')).toEqual([]);
    expect(await readFile('header-only.csv', 'app_user_id,receipt\n')).toEqual([]);
    expect(await readFile('header-only-nonl.csv', 'app_user_id,receipt')).toEqual([]);
    expect(await readFile('blank-only.csv', '\n\r\n\n')).toEqual([]);
  });

  it('keeps column names such as __proto__ as ordinary keys', async () => {
    const items = await readFile('proto.csv', '__proto__,b\nx,y\n');
    const values = records(items)[0]?.values;
    expect(Object.keys(values ?? {})).toEqual(['__proto__', 'b']);
    expect(values?.['__proto__']).toBe('x');
  });
});

describe('readCsvFile: bad content becomes problems, never exceptions', () => {
  it('reports a ragged row with its line and reads the next rows', async () => {
    const items = await readFile('ragged.csv', 'a,b,c\n1,2,3\n4,5,6,7\n8,9\n10,11,12\n');
    expect(view(items)).toEqual([
      [2, { a: '1', b: '2', c: '3' }],
      [3, 'problem', "has 4 fields, header has 3; check this row's quoting and commas"],
      [4, 'problem', "has 2 fields, header has 3; check this row's quoting and commas"],
      [5, { a: '10', b: '11', c: '12' }],
    ]);
  });

  it('reports a duplicate header name at its line, then rejects each row after it at its own line with that reason', async () => {
    const items = await readFile('dup.csv', 'app_user_id,token,token\nu1,a,b\n\nu2,c,d\n');
    const reason = 'column "token" appears twice in the header (columns 2 and 3); rename or remove one';
    expect(items).toEqual([
      { kind: 'problem', source: expect.any(String), line: 1, reason, raw: 'app_user_id,token,token' },
      { kind: 'problem', source: expect.any(String), line: 2, reason: notRead(reason) },
      { kind: 'problem', source: expect.any(String), line: 4, reason: notRead(reason) },
    ]);
    // Row text is never echoed (it carries fetch tokens): only the header problem has `raw`.
    expect(items.slice(1).every((i) => !('raw' in i))).toBe(true);
  });

  it('treats names that differ only by surrounding spaces as duplicates', async () => {
    const items = await readFile('dup-trim.csv', 'a, a\n1,2\n');
    const reason = expect.stringMatching(/^column "a" appears twice/);
    expect(view(items)).toEqual([
      [1, 'problem', reason],
      [2, 'problem', expect.stringMatching(/^not read: the header of this file is unusable \(column "a" appears twice .*\)$/)],
    ]);
  });

  it('reports an empty header name, then rejects every non-blank row after it (ragged, badly quoted or fine) at its line', async () => {
    const items = await readFile('empty-name.csv', '\napp_user_id,,receipt\nu1,x,t\n   \n,,\nu2,"two\nlines",t\nragged\n"x"y,1,2\nu4,x,t');
    const reason = 'column 2 of the header has no name; name it or delete the column';
    expect(view(items)).toEqual([
      [2, 'problem', reason],
      [3, 'problem', notRead(reason)],
      [6, 'problem', notRead(reason)],
      [8, 'problem', notRead(reason)],
      [9, 'problem', notRead(reason)],
      [10, 'problem', notRead(reason)],
    ]);
  });

  it('after a bad header, a row that is oversized or never closes its quote keeps its own reason', async () => {
    const csv = 'a,a\n1,2\n3,' + 'x'.repeat(100) + '\n4,5\n6,"never closed\n7,8\n';
    const items = await collect(readCsvStream(Readable.from([Buffer.from(csv)]), 'bad-header-then-worse.csv', { gzip: false, maxRecordBytes: 50 }));
    const reason = 'column "a" appears twice in the header (columns 1 and 2); rename or remove one';
    expect(view(items)).toEqual([
      [1, 'problem', reason],
      [2, 'problem', notRead(reason)],
      [3, 'problem', 'this row is longer than 50 bytes, more than any receipt needs, so it was skipped (the rows after it were read); shorten or remove it'],
      [4, 'problem', notRead(reason)],
      [5, 'problem', expect.stringMatching(/^a quoted field opened in this row is never closed, so the rest of the file could not be read/)],
    ]);
  });

  it('reports an oversized header at its line and rejects each row after it at its own line with that reason', async () => {
    const csv = '\n' + 'h'.repeat(80) + ',x\n1,2\n\n3,"multi\nline"\n' + 'y'.repeat(80) + '\n5,6';
    const items = await collect(readCsvStream(Readable.from([Buffer.from(csv)]), 'long-header.csv', { gzip: false, maxRecordBytes: 50 }));
    const reason = 'the header row is longer than 50 bytes, so this is not a CSV file with a header row; check that it is the right file';
    expect(view(items)).toEqual([
      [2, 'problem', reason],
      [3, 'problem', notRead(reason)],
      [5, 'problem', notRead(reason)],
      [7, 'problem', expect.stringMatching(/^this row is longer than 50 bytes, more than any receipt needs/)],
      [8, 'problem', notRead(reason)],
    ]);
  });

  it('reports an oversized header whose quote never closes as one problem (the quote swallowed the rest of the file)', async () => {
    const items = await collect(readCsvStream(Readable.from([Buffer.from('a,"' + 'h'.repeat(80) + '\n1,2\n3,4\n')]), 'open-header.csv', { gzip: false, maxRecordBytes: 50 }));
    expect(view(items)).toEqual([
      [1, 'problem', 'the header row is longer than 50 bytes and a quote in it is never closed, so this is not a CSV file with a header row; check that it is the right file'],
    ]);
  });

  it('reports text after a closing quote as broken quoting and keeps reading the following rows', async () => {
    const items = await readFile('badquote.csv', 'a,b\n1,ok\n"x"y,2\n3,4\n"5",6\n');
    expect(view(items)).toEqual([
      [2, { a: '1', b: 'ok' }],
      [3, 'problem', expect.stringMatching(/^field 1 has text after its closing quote/)],
      [4, { a: '3', b: '4' }],
      [5, { a: '5', b: '6' }],
    ]);
  });

  it('accepts a stray quote inside an unquoted value (unambiguous)', async () => {
    const items = await readFile('stray.csv', 'a,b\n1,12" pizza\n');
    expect(view(items)).toEqual([[2, { a: '1', b: '12" pizza' }]]);
  });

  it('ends with a problem (not an exception) when a quote is never closed, after the rows before it', async () => {
    const items = await readFile('unclosed.csv', 'a,b\n1,2\n\n3,"never closed\n4,5\n6,7\n');
    expect(view(items)).toEqual([
      [2, { a: '1', b: '2' }],
      [4, 'problem', expect.stringMatching(/^a quoted field opened in this row is never closed/)],
    ]);
  });

  it('stops at a problem when an unclosed quote runs past the record size limit', async () => {
    const filler = 'x'.repeat(1024) + '\n';
    const body = 'a,b\n1,2\n3,"open\n' + filler.repeat(Math.ceil(MAX_RECORD_BYTES / filler.length) + 10) + '9,9\n';
    const items = await readFile('huge.csv', body);
    expect(view(items)).toEqual([
      [2, { a: '1', b: '2' }],
      [3, 'problem', expect.stringMatching(/^this row is longer than/)],
    ]);
  });

  it('reports invalid UTF-8 in a row (naming the column) and reads the other rows', async () => {
    const content = Buffer.concat([Buffer.from('app_user_id,receipt\nu1,'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('\nu2,t2\n')]);
    const items = await readFile('badutf8.csv', content);
    expect(view(items)).toEqual([
      [2, 'problem', 'not valid UTF-8 (column "receipt"); save the file as UTF-8'],
      [3, { app_user_id: 'u2', receipt: 't2' }],
    ]);
  });

  it('keeps valid multi-byte UTF-8 split across read chunks intact', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => `user_é${i},tök€n${i}`).join('\n');
    const items = await readFile('multibyte.csv', `app_user_id,receipt\n${rows}\n`);
    expect(problems(items)).toEqual([]);
    expect(records(items)).toHaveLength(5000);
    expect(records(items)[4999]?.values).toEqual({ app_user_id: 'user_é4999', receipt: 'tök€n4999' });
  });

  it('reports an invalid UTF-8 header, then rejects each row after it at its own line with that reason', async () => {
    const items = await readFile('badheader.csv', Buffer.concat([Buffer.from('a,'), Buffer.from([0xc3, 0x28]), Buffer.from('\n1,2\n\n3,4\n')]));
    const reason = 'the header row is not valid UTF-8 (column 2); save the file as UTF-8';
    expect(view(items)).toEqual([
      [1, 'problem', reason],
      [2, 'problem', notRead(reason)],
      [4, 'problem', notRead(reason)],
    ]);
  });
});

describe('readCsvFile: binary files', () => {
  it('turns 64 KiB of random bytes into one problem per "record" after the unusable "header": bounded and fast', async () => {
    const corpus = join(dir, 'hostile');
    generate(corpus);
    const path = join(corpus, 'binary-random.csv');
    const bytes = await readBytes(path);
    let lineBreaks = 0;
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a || (bytes[i] === 0x0d && bytes[i + 1] !== 0x0a)) lineBreaks++;

    const started = performance.now();
    const items = await collect(readCsvFile(path));
    const elapsed = performance.now() - started;

    expect(records(items)).toEqual([]);
    const [header, ...rest] = problems(items);
    expect(header?.line).toBe(1);
    expect(header?.reason).toMatch(/^the header row is not valid UTF-8 \(column \d+\); save the file as UTF-8$/);
    expect(rest.length).toBeGreaterThan(100); // every record has its own outcome, not just the first
    for (const p of rest) expect(p.reason).toBe(notRead(header?.reason ?? ''));
    // At most one item per physical line, at increasing lines: the count is bounded by the file's line breaks.
    expect(items.length).toBeLessThanOrEqual(lineBreaks + 1);
    for (let i = 1; i < items.length; i++) expect(items[i]?.line).toBeGreaterThan(items[i - 1]?.line ?? 0);
    expect(elapsed).toBeLessThan(5_000); // ~100 ms on a laptop; generous for a loaded CI machine
  });
});

describe('readCsvFile: gzip', () => {
  const csv = 'app_user_id,receipt\n' + Array.from({ length: 2000 }, (_, i) => `user${i},token${i}`).join('\n') + '\n';

  it('gunzips a .gz file', async () => {
    const items = await readFile('a.csv.gz', gzipSync(csv));
    expect(records(items)).toHaveLength(2000);
    expect(records(items)[1999]).toMatchObject({ line: 2001, values: { app_user_id: 'user1999', receipt: 'token1999' } });
  });

  it('gunzips by magic bytes when the name does not say .gz', async () => {
    const items = await readFile('sniffed.csv', gzipSync('a,b\n1,2\n'));
    expect(view(items)).toEqual([[2, { a: '1', b: '2' }]]);
  });

  it('turns a truncated gzip into a problem after the rows it could read, never half a row', async () => {
    const gz = gzipSync(csv);
    const items = await readFile('truncated.csv.gz', gz.subarray(0, Math.floor(gz.length * 0.6)));
    const recs = records(items);
    const last = items.at(-1) as CsvProblem;
    expect(last.kind).toBe('problem');
    expect(last.reason).toMatch(/gzip data is truncated: reading stopped at line \d+/);
    expect(problems(items)).toHaveLength(1);
    expect(recs.length).toBeGreaterThan(100);
    expect(recs.length).toBeLessThan(2000);
    // Every record yielded is complete and in order; the problem's line is the first line not read.
    recs.forEach((r, i) => expect(r.values).toEqual({ app_user_id: `user${i}`, receipt: `token${i}` }));
    expect(last.line).toBe((recs.at(-1)?.line ?? 1) + 1);
  });

  it('reports a .gz file that is not gzip data', async () => {
    const items = await readFile('fake.csv.gz', 'a,b\n1,2\n');
    expect(view(items)).toEqual([[1, 'problem', expect.stringMatching(/not valid gzip data/)]]);
  });

  it('yields nothing for an empty .gz file and for a gzip of an empty file', async () => {
    expect(await readFile('empty.csv.gz', '')).toEqual([]);
    expect(await readFile('empty-content.csv.gz', gzipSync(''))).toEqual([]);
  });
});

describe('readCsvStream and I/O errors', () => {
  it('reads from a stream, sniffing gzip when not told', async () => {
    const items = await collect(readCsvStream(Readable.from([gzipSync('a,b\n1,2\n')]), 's3://bucket/x.csv.gz'));
    expect(items).toEqual([{ kind: 'record', source: 's3://bucket/x.csv.gz', line: 2, columns: ['a', 'b'], values: { a: '1', b: '2' } }]);
  });

  it('handles a CRLF split between two chunks', async () => {
    const chunks = ['a,b\r', '\n1,2\r', '\n3,4\r\n'].map((s) => Buffer.from(s));
    const items = await collect(readCsvStream(Readable.from(chunks), 'chunks', { gzip: false }));
    expect(view(items)).toEqual([
      [2, { a: '1', b: '2' }],
      [3, { a: '3', b: '4' }],
    ]);
  });

  it('throws a clear Error naming the path for a missing file', async () => {
    const missing = join(dir, 'nope.csv');
    await expect(collect(readCsvFile(missing))).rejects.toThrow(`cannot open CSV file "${missing}"`);
  });

  it('throws (does not report a problem) when the input stream itself fails', async () => {
    const failing = new Readable({
      read() {
        this.push('a,b\n1,2\n');
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(collect(readCsvStream(failing, 'remote.csv', { gzip: false }))).rejects.toThrow(/error reading "remote.csv": connection reset/);
  });

  it('streams: a consumer that stops early releases the input without reading it all', async () => {
    let produced = 0;
    let closed = false;
    function* big(): Generator<Buffer> {
      try {
        yield Buffer.from('a,b\n');
        for (let i = 0; i < 1_000_000; i++) {
          produced++;
          yield Buffer.from(`${i},${'x'.repeat(100)}\n`);
        }
      } finally {
        closed = true;
      }
    }
    let seen = 0;
    for await (const item of readCsvStream(Readable.from(big()), 'big', { gzip: false })) {
      expect(item.kind).toBe('record');
      if (++seen === 10) break;
    }
    // the generator's finally runs once the reader let go of it
    await until('the producer to be closed', () => closed, { timeoutMs: 5_000, everyMs: 5 });
    expect(produced).toBeLessThan(10_000); // backpressure: far from the million rows
  });
});

describe('readCsv: Excel separator hint (sep=)', () => {
  it('honours a sep=; first line: splits on semicolons (commas are text), drops the hint, keeps the real line numbers', async () => {
    const csv = 'sep=;\r\napp_user_id;receipt;price\r\nu1;"a;b";9,99\r\n\r\nu2;t2;1,5\r\n';
    const items = await readFile('sep.csv', csv);
    expect(view(items)).toEqual([
      [3, { app_user_id: 'u1', receipt: 'a;b', price: '9,99' }],
      [5, { app_user_id: 'u2', receipt: 't2', price: '1,5' }],
    ]);
    expect(records(items)[0]?.columns).toEqual(['app_user_id', 'receipt', 'price']);
  });

  it('reads the hint quoted, padded to the table width, in any case, after a BOM, with tabs and pipes', async () => {
    const cases: [string, string | Buffer][] = [
      ['quoted.csv', '"sep=;";;\na;b;c\n1;2;3\n'],
      ['upper.csv', 'SEP=;\na;b;c\n1;2;3\n'],
      ['bom.csv', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('sep=;\na;b;c\n1;2;3\n')])],
      ['tab.csv', 'sep=\t\na\tb\tc\n1\t2\t3\n'],
      ['pipe.csv', 'sep=|\r\na|b|c\r\n1|2|3\r\n'],
      ['comma.csv', 'sep=,\na,b,c\n1,2,3\n'],
    ];
    for (const [name, content] of cases) {
      expect(view(await readFile(name, content)), name).toEqual([[3, { a: '1', b: '2', c: '3' }]]);
    }
  });

  it('finds the hint when it arrives split over several chunks, and in a gzip', async () => {
    const chunks = ['s', 'ep', '=', ';', '\r', '\na;b\r\n1;', '2\r\n'].map((c) => Buffer.from(c));
    expect(view(await collect(readCsvStream(Readable.from(chunks), 'chunks', { gzip: false })))).toEqual([[3, { a: '1', b: '2' }]]);
    expect(view(await readFile('sep.csv.gz', gzipSync('sep=;\na;b\n1;2\n')))).toEqual([[3, { a: '1', b: '2' }]]);
  });

  it('checks quoting and row width against the hinted separator', async () => {
    const csv = 'sep=;\na;b\n"x"y;1\n1;2;3\n"ok;";"fine"\n';
    expect(view(await readFile('sep-bad.csv', csv))).toEqual([
      [3, 'problem', 'field 1 has text after its closing quote; quote the whole value and double any quote inside it ("")'],
      [4, 'problem', 'has 3 fields, header has 2; check this row\'s quoting and ";" separators'],
      [5, { a: 'ok;', b: 'fine' }],
    ]);
  });

  it('keeps a record over the size limit to one problem with the hinted separator', async () => {
    const items = await collect(readCsvStream(Readable.from([Buffer.from(`sep=;\na;b\n1;"${'x'.repeat(200)}"\n2;3\n`)]), 'big', { gzip: false, maxRecordBytes: 100 }));
    expect(view(items)).toEqual([
      [3, 'problem', expect.stringMatching(/^this row is longer than 100 bytes/)],
      [4, { a: '2', b: '3' }],
    ]);
  });

  it('refuses a hint it cannot honour at line 1, then accounts for every row with that reason', async () => {
    const items = await readFile('sep-unusable.csv', 'sep=ab\na;b\n1;2\n\n3;4\n');
    const reason =
      'the first line "sep=ab" is a separator hint that cannot be used: write it as sep= followed by one character such as ; | or a tab (not a letter, digit, space or quote), or delete the line';
    expect(view(items)).toEqual([
      [1, 'problem', reason],
      [2, 'problem', notRead(reason)],
      [3, 'problem', notRead(reason)],
      [5, 'problem', notRead(reason)],
    ]);
  });

  it('only reads line 1 as a hint, and a semicolon file without one still gets its single-column header', async () => {
    expect(view(await readFile('late-hint.csv', 'a,b\nsep=;,x\n'))).toEqual([[2, { a: 'sep=;', b: 'x' }]]);
    const items = await readFile('semicolon.csv', 'app_user_id;receipt\nu1;t1\n');
    expect(records(items)[0]?.columns).toEqual(['app_user_id;receipt']);
    expect(planColumns(records(items)[0]?.columns ?? [], { platform: 'ios' })).toEqual({
      error: 'the header is a single column "app_user_id;receipt": the file seems to use ";" between columns; save it as comma-separated CSV',
    });
  });

  it('reads an empty file after the hint as nothing', async () => {
    expect(await readFile('only-hint.csv', 'sep=;\n')).toEqual([]);
    expect(await readFile('only-hint-nolf.csv', 'sep=;')).toEqual([]);
  });
});

describe('readCsv: --encoding', () => {
  const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');
  /** windows-1252 bytes of the characters it has beyond Latin-1, as Excel on Windows writes them. */
  const CP1252: Record<string, number> = { '€': 0x80, '‚': 0x82, '„': 0x84, '…': 0x85, '‘': 0x91, '’': 0x92, '“': 0x93, '”': 0x94, '–': 0x96, '—': 0x97, œ: 0x9c, Ÿ: 0x9f };
  const cp1252 = (text: string): Buffer => Buffer.from(Array.from(text, (ch) => CP1252[ch] ?? (ch.charCodeAt(0) <= 0xff ? ch.charCodeAt(0) : 0x3f)));

  it('reads a Latin-1 file with accented names as the same text in UTF-8', async () => {
    const bytes = latin1('app_user_id,$displayName,receipt\r\njosé,José Müller,t1\r\nfrançoise,Françoise Ørsted-Ñúñez,t2\r\n');
    expect(bytes.includes(Buffer.from('é', 'utf8'))).toBe(false); // really one byte per character
    const items = await collect(readCsvFile(await fixture('latin1.csv', bytes), { encoding: 'latin1' }));
    expect(view(items)).toEqual([
      [2, { app_user_id: 'josé', $displayName: 'José Müller', receipt: 't1' }],
      [3, { app_user_id: 'françoise', $displayName: 'Françoise Ørsted-Ñúñez', receipt: 't2' }],
    ]);
  });

  it('still refuses a Latin-1 file read as UTF-8 (the default), row by row', async () => {
    const items = await readFile('latin1-as-utf8.csv', latin1('app_user_id,receipt\njosé,t1\nplain,t2\n'));
    expect(view(items)).toEqual([
      [2, 'problem', 'not valid UTF-8 (column "app_user_id"); save the file as UTF-8'],
      [3, { app_user_id: 'plain', receipt: 't2' }],
    ]);
  });

  it('reads a windows-1252 file with €, curly quotes and dashes (latin1 reads them the same way)', async () => {
    const text = 'app_user_id,$note,receipt\n“quoted” user,Price: 9€ – ‘special’ — naïve… œuvre Ÿ,t1\n';
    const bytes = cp1252(text);
    expect(bytes.length).toBe(text.length); // one byte per character
    const expected = [[2, { app_user_id: '“quoted” user', $note: 'Price: 9€ – ‘special’ — naïve… œuvre Ÿ', receipt: 't1' }]];
    const path = await fixture('cp1252.csv', bytes);
    expect(view(await collect(readCsvFile(path, { encoding: 'windows-1252' })))).toEqual(expected);
    expect(view(await collect(readCsvFile(path, { encoding: 'latin1' })))).toEqual(expected);
  });

  it('reads UTF-16LE without a byte order mark when told, with CRLF and a quoted line break, in chunks of any size', async () => {
    const bytes = Buffer.from('app_user_id,receipt\r\nü1,"x\r\ny"\r\n€2,t2\r\n', 'utf16le');
    const expected = [
      [2, { app_user_id: 'ü1', receipt: 'x\ny' }],
      [4, { app_user_id: '€2', receipt: 't2' }],
    ];
    expect(view(await collect(readCsvFile(await fixture('utf16le-nobom.csv', bytes), { encoding: 'utf16le' })))).toEqual(expected);
    // One byte at a time: every code unit is split between two chunks.
    const oneByOne = Readable.from(Array.from(bytes, (b) => Buffer.from([b])));
    expect(view(await collect(readCsvStream(oneByOne, 'bytes', { gzip: false, encoding: 'utf16le' })))).toEqual(expected);
    // And gzipped.
    expect(view(await collect(readCsvFile(await fixture('utf16le.csv.gz', gzipSync(bytes)), { encoding: 'utf16le' })))).toEqual(expected);
  });

  it('lets a byte order mark win over the option', async () => {
    const utf8 = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('a,b\né,€\n')]);
    expect(view(await collect(readCsvFile(await fixture('bom8.csv', utf8), { encoding: 'latin1' })))).toEqual([[2, { a: 'é', b: '€' }]]);
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a,b\né,€\n', 'utf16le')]);
    expect(view(await collect(readCsvFile(await fixture('bom16.csv', utf16), { encoding: 'windows-1252' })))).toEqual([[2, { a: 'é', b: '€' }]]);
    expect(view(await collect(readCsvFile(await fixture('bom16b.csv', utf16), { encoding: 'utf16le' })))).toEqual([[2, { a: 'é', b: '€' }]]);
  });

  it('names the encoding given when the text is not valid in it', async () => {
    const bytes = Buffer.concat([Buffer.from('a,b\n1,', 'utf16le'), Buffer.from([0x00, 0xd8]), Buffer.from('\n2,3\n', 'utf16le')]); // a lone surrogate
    const items = await collect(readCsvFile(await fixture('bad16.csv', bytes), { encoding: 'utf16le' }));
    expect(view(items)).toEqual([
      [2, 'problem', 'not valid UTF-16LE (column "b"); check that the file is UTF-16LE, or pass the --encoding it was saved in'],
      [3, { a: '2', b: '3' }],
    ]);
    const header = await collect(
      readCsvFile(await fixture('bad16h.csv', Buffer.concat([Buffer.from('a,', 'utf16le'), Buffer.from([0x00, 0xdc]), Buffer.from('\n1,2\n', 'utf16le')])), {
        encoding: 'utf16le',
      }),
    );
    const reason = 'the header row is not valid UTF-16LE (column 2); check that the file is UTF-16LE, or pass the --encoding it was saved in';
    expect(view(header)).toEqual([
      [1, 'problem', reason],
      [2, 'problem', notRead(reason)],
    ]);
  });

  it('honours a sep=; hint in a windows-1252 file', async () => {
    const items = await collect(readCsvFile(await fixture('excel-fr.csv', cp1252('sep=;\r\napp_user_id;prix\r\nHélène;9,99 €\r\n')), { encoding: 'windows-1252' }));
    expect(view(items)).toEqual([[3, { app_user_id: 'Hélène', prix: '9,99 €' }]]);
  });
});

describe('readCsv: quote-free records split without csv-parse', () => {
  /** A small deterministic generator, so a failure can be replayed. */
  function lcg(seed: number): () => number {
    let state = seed >>> 0 || 1;
    return () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
  }

  /** A file of pieces the two ways must read alike: blank, white-space and comma-only lines, ragged rows, CR/CRLF, bad UTF-8, long fields. */
  function randomFile(random: () => number, quote: boolean): Buffer {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    const cells = ['', ' ', 'u1', 'tok\u00e9n', 'MII' + 'A'.repeat(Math.floor(random() * 3000)), '\u{1F600}', 'a b', '12" pizza'];
    const parts: Buffer[] = [];
    if (random() < 0.2) parts.push(Buffer.from([0xef, 0xbb, 0xbf]));
    if (random() < 0.2) parts.push(Buffer.from('sep=;\n'));
    const sep = parts.some((p) => p.toString() === 'sep=;\n') ? ';' : ',';
    parts.push(Buffer.from(['platform', 'app_user_id', 'fetch_token'].join(sep) + '\n'));
    const rows = 20 + Math.floor(random() * 60);
    for (let r = 0; r < rows; r++) {
      const kind = random();
      if (kind < 0.08) parts.push(Buffer.from('\n'));
      else if (kind < 0.12) parts.push(Buffer.from('  \t\n'));
      else if (kind < 0.15) parts.push(Buffer.from(sep + sep + '\n'));
      else if (kind < 0.18) parts.push(Buffer.from([0x69, 0x6f, 0x73, sep.charCodeAt(0), 0xc3, 0x28, sep.charCodeAt(0), 0x41, 0x0a]));
      else {
        const fields = Array.from({ length: 2 + Math.floor(random() * 3) }, () => pick(cells).replace(/"/g, quote ? '"' : ''));
        if (quote && random() < 0.1) fields[1] = `"quoted${sep} value"`;
        parts.push(Buffer.from(fields.join(sep) + pick(['\n', '\r\n', '\r'])));
      }
    }
    if (random() < 0.5) parts.push(Buffer.from('ios' + sep + 'last' + sep + 'no-final-newline'));
    return Buffer.concat(parts);
  }

  /** The bytes in chunks of random sizes (records then span chunks, as they do in 64 KB reads). */
  function chunked(random: () => number, bytes: Buffer): Buffer[] {
    const out: Buffer[] = [];
    for (let at = 0; at < bytes.length;) {
      const size = 1 + Math.floor(random() * 700);
      out.push(bytes.subarray(at, at + size));
      at += size;
    }
    return out;
  }

  async function both(bytes: Buffer, chunks: Buffer[]): Promise<[CsvItem[], CsvItem[]]> {
    const read = (split: boolean) => collect(readCsvStream(Readable.from(chunks), 'mix.csv', { gzip: false, maxRecordBytes: 2500, splitQuoteFree: split }));
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    return [await read(true), await read(false)];
  }

  it('reads quote-free files exactly as csv-parse does: records, line numbers and problems', async () => {
    const random = lcg(15);
    let records = 0;
    const problems = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const bytes = randomFile(random, false);
      const [split, parsed] = await both(bytes, chunked(random, bytes));
      expect(split).toEqual(parsed);
      records += split.filter((x) => x.kind === 'record').length;
      for (const x of split) if (x.kind === 'problem') problems.add(x.reason.replace(/\d+/g, 'N').slice(0, 24));
    }
    expect(records).toBeGreaterThan(500);
    // ragged rows, bad UTF-8 and oversized rows were among them
    expect([...problems].sort()).toEqual(['has N fields, header has', 'not valid UTF-N (column ', 'this row is longer than ']);
  });

  it('hands the rest of a file to csv-parse from the first run of records holding a quote', async () => {
    const random = lcg(16);
    let quoted = 0;
    for (let i = 0; i < 60; i++) {
      const bytes = randomFile(random, true);
      const [split, parsed] = await both(bytes, chunked(random, bytes));
      expect(split).toEqual(parsed);
      quoted += split.filter((x) => x.kind === 'record' && Object.values(x.values).some((v) => v.startsWith('quoted'))).length;
    }
    expect(quoted).toBeGreaterThan(10);
  });
});

describe('planColumns', () => {
  const ok = (columns: string[], opts = {}): ColumnPlan => {
    const r = planColumns(columns, opts);
    if ('error' in r) throw new Error(`unexpected error: ${r.error}`);
    return r.plan;
  };
  const err = (columns: string[], opts = {}): string => {
    const r = planColumns(columns, opts);
    if (!('error' in r)) throw new Error(`expected an error, got ${JSON.stringify(r.plan)}`);
    return r.error;
  };

  it("reads RevenueCat's Apple bulk-import format (app_user_id, receipt)", () => {
    expect(ok(['app_user_id', 'receipt'], { platform: 'ios' })).toEqual({ fields: { app_user_id: 'app_user_id', receipt: 'fetch_token' }, attributes: {}, ignored: [] });
  });

  it("reads RevenueCat's Google bulk-import format (app_user_id, product_id, token)", () => {
    expect(ok(['app_user_id', 'product_id', 'token'], { platform: 'android' })).toEqual({
      fields: { app_user_id: 'app_user_id', product_id: 'product_id', token: 'fetch_token' },
      attributes: {},
      ignored: [],
    });
  });

  it("reads RevenueCat's Stripe bulk-import format (app_user_id, subscription_token)", () => {
    expect(ok(['app_user_id', 'subscription_token'], { platform: 'stripe' }).fields).toEqual({ app_user_id: 'app_user_id', subscription_token: 'fetch_token' });
  });

  it('makes $ columns attributes named exactly as the column, and ignores unknown columns', () => {
    const plan = ok(['app_user_id', 'receipt', '$email', '$displayName', 'notes', 'create_events'], { platform: 'ios' });
    expect(plan.attributes).toEqual({ $email: '$email', $displayName: '$displayName' });
    expect(plan.ignored).toEqual(['notes', 'create_events']);
  });

  it('matches aliases and field names case-insensitively; platform aliases store and x-platform', () => {
    expect(ok(['User_ID', 'Purchase_Token', 'X-Platform', 'PRICE']).fields).toEqual({
      User_ID: 'app_user_id',
      Purchase_Token: 'fetch_token',
      'X-Platform': 'platform',
      PRICE: 'price',
    });
    expect(ok(['app_user_id', 'fetch_token', 'Store']).fields).toEqual({ app_user_id: 'app_user_id', fetch_token: 'fetch_token', Store: 'platform' });
    expect([...PLATFORM_COLUMN_NAMES].sort()).toEqual(['platform', 'store', 'x-platform']);
  });

  it('--map renames a column to a field and --attribute makes a column an attribute', () => {
    const plan = ok(['uid', 'blob', 'os', 'tier'], { map: { uid: 'app_user_id', blob: 'fetch_token', os: 'platform' }, attributes: ['tier'] });
    expect(plan).toEqual({ fields: { uid: 'app_user_id', blob: 'fetch_token', os: 'platform' }, attributes: { tier: 'tier' }, ignored: [] });
  });

  it('an explicit --map picks between two columns that would be the same field; the other is ignored', () => {
    const plan = ok(['app_user_id', 'receipt', 'token'], { platform: 'ios', map: { token: 'fetch_token' } });
    expect(plan.fields).toEqual({ app_user_id: 'app_user_id', token: 'fetch_token' });
    expect(plan.ignored).toEqual(['receipt']);
  });

  it('refuses files that cannot work, saying what to do', () => {
    expect(err(['user', 'receipt'], { platform: 'ios' })).toBe('no column for app_user_id: name it app_user_id or user_id, or pass --map yourcolumn=app_user_id');
    expect(err(['app_user_id', 'blob'], { platform: 'ios' })).toBe(
      'no column for fetch_token: name it fetch_token, receipt, token, subscription_token or purchase_token, or pass --map yourcolumn=fetch_token',
    );
    expect(err(['app_user_id', 'receipt'])).toMatch(/^no platform: add a platform column .* or pass --platform/);
    expect(err(['app_user_id', 'receipt', 'token'], { platform: 'ios' })).toBe(
      'columns "receipt" and "token" would all be fetch_token; remove all but one, or choose with --map receipt=fetch_token',
    );
    expect(err(['app_user_id', 'user_id', 'receipt'], { platform: 'ios' })).toMatch(/"app_user_id" and "user_id" would all be app_user_id/);
  });

  it('refuses a fixed platform whose required field has no column', () => {
    expect(err(['app_user_id', 'token'], { platform: 'android' })).toBe('android rows require product_id: add a product_id column, or pass --map yourcolumn=product_id');
    expect(err(['app_user_id', 'receipt'], { platform: 'amazon' })).toMatch(/^amazon rows require store_user_id/);
    // With a platform column each row decides: no file-level refusal.
    expect(ok(['app_user_id', 'token', 'platform']).fields.platform).toBe('platform');
  });

  it('validates --map and --attribute', () => {
    expect(err(['app_user_id', 'x'], { platform: 'ios', map: { x: 'receipt_data' } })).toMatch(
      /^--map x=receipt_data: "receipt_data" is not a field; use one of app_user_id, fetch_token/,
    );
    expect(err(['app_user_id', 'receipt'], { platform: 'ios', map: { missing: 'fetch_token' } })).toMatch(/^--map missing=fetch_token: the file has no column "missing"/);
    expect(err(['a', 'b', 'receipt'], { platform: 'ios', map: { a: 'app_user_id', b: 'app_user_id' } })).toMatch(/--map sends columns "a" and "b" all to app_user_id/);
    expect(err(['app_user_id', 'receipt'], { platform: 'ios', attributes: ['tier'] })).toMatch(/^--attribute tier: the file has no column "tier"/);
    expect(err(['app_user_id', 'receipt', 'x'], { platform: 'ios', map: { x: 'product_id' }, attributes: ['x'] })).toMatch(/both to --map and to --attribute/);
    // The historical-import flags are set by the pipeline, never by a row.
    expect(err(['app_user_id', 'receipt', 'ce'], { platform: 'ios', map: { ce: 'create_events' } })).toMatch(/"create_events" is not a field/);
  });

  it("enforces RevenueCat's attribute name limits", () => {
    expect(err(['app_user_id', 'receipt', 'a b'], { platform: 'ios', attributes: ['a b'] })).toMatch(/attribute name "a b" contains whitespace/);
    const long = 'x'.repeat(41);
    expect(err(['app_user_id', 'receipt', long], { platform: 'ios', attributes: [long] })).toMatch(/longer than 40 characters/);
    const many = Array.from({ length: 51 }, (_, i) => `$a${i}`);
    expect(err(['app_user_id', 'receipt', ...many], { platform: 'ios' })).toMatch(/51 columns would be attributes; RevenueCat accepts at most 50/);
  });

  it('spots a file separated by semicolons or tabs', () => {
    expect(err(['app_user_id;receipt'], { platform: 'ios' })).toMatch(/seems to use ";" between columns; save it as comma-separated CSV/);
    expect(err(['app_user_id\treceipt'], { platform: 'ios' })).toMatch(/seems to use tabs/);
  });

  it('works on the columns readCsvFile yields', async () => {
    const items = await readFile('google.csv', 'app_user_id,product_id,token,$email\nu1,sku,tok,a@b.c\n');
    const rec = records(items)[0];
    expect(rec).toBeDefined();
    const plan = ok(rec?.columns ?? [], { platform: 'android' });
    expect(plan.attributes).toEqual({ $email: '$email' });
    expect(Object.keys(plan.fields).every((c) => c in (rec?.values ?? {}))).toBe(true);
  });
});
