// Property tests (fast-check, fixed seeds so a failure replays): the CSV reader over any bytes, its round trip with
// csv-stringify, and the row validator over any record and any column plan.
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { stringify } from 'csv-stringify/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planColumns, COLUMN_ALIASES, type ColumnOptions } from '../src/ingest/columns.js';
import { EXPECTATION_COLUMNS, readExpectations } from '../src/ingest/expectations.js';
import { readCsvStream, type CsvItem, type CsvRecord, type InputEncoding } from '../src/ingest/readCsv.js';
import { MAX_ATTRIBUTE_VALUE_LENGTH, validateRow } from '../src/ingest/validateRow.js';
import {
  APP_USER_ID_BLOCKLIST,
  ISO_4217,
  PLATFORMS,
  RECEIPT_FIELDS,
  RECEIPT_FIELD_NAMES,
  appUserIdProblem,
  fieldSupport,
  isIsoDuration,
  type Platform,
} from '../src/revenuecat/fields.js';

const SEED = 20_260_517;

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** Splits bytes into chunks of the given sizes (cycled), so chunk boundaries fall everywhere. */
function chunked(bytes: Uint8Array, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let k = 0; at < bytes.length; k++) {
    const size = Math.max(1, sizes[k % sizes.length] ?? 1);
    out.push(Buffer.from(bytes.subarray(at, at + size)));
    at += size;
  }
  return out;
}

async function read(bytes: Uint8Array, opts: { sizes?: number[]; gzip?: boolean; maxRecordBytes?: number; encoding?: InputEncoding } = {}): Promise<CsvItem[]> {
  const chunks = chunked(bytes, opts.sizes ?? [65_536]);
  const items: CsvItem[] = [];
  const readOpts = {
    ...(opts.gzip === undefined ? {} : { gzip: opts.gzip }),
    ...(opts.maxRecordBytes === undefined ? {} : { maxRecordBytes: opts.maxRecordBytes }),
    ...(opts.encoding === undefined ? {} : { encoding: opts.encoding }),
  };
  for await (const item of readCsvStream(Readable.from(chunks), 'prop.csv', readOpts)) items.push(item);
  return items;
}

/** What the reader promises for any input: records and problems only, at increasing lines, each record once. */
function checkItems(items: CsvItem[]): void {
  let last = 0;
  const seen = new Set<CsvItem>();
  for (const item of items) {
    expect(['record', 'problem']).toContain(item.kind);
    expect(item.source).toBe('prop.csv');
    expect(Number.isInteger(item.line)).toBe(true);
    expect(item.line).toBeGreaterThan(last); // increasing, so no line (and no record) comes twice
    last = item.line;
    expect(seen.has(item)).toBe(false);
    seen.add(item);
    if (item.kind === 'record') {
      expect(item.line).toBeGreaterThanOrEqual(2);
      expect(item.columns.length).toBeGreaterThan(0);
      expect(new Set(item.columns).size).toBe(item.columns.length);
      // (compared sorted: an object lists integer-like keys such as "1" first)
      expect(Object.keys(item.values).sort()).toEqual([...item.columns].sort());
      for (const v of Object.values(item.values)) {
        expect(typeof v).toBe('string');
        expect(v).not.toContain('\uFFFD');
        expect(v).not.toContain('\r');
      }
    } else {
      expect(item.line).toBeGreaterThanOrEqual(1);
      expect(item.reason.length).toBeGreaterThan(0);
    }
  }
}

const records = (items: CsvItem[]): CsvRecord[] => items.filter((i): i is CsvRecord => i.kind === 'record');
const utf8 = (text: string): Uint8Array => Buffer.from(text, 'utf8');

// CSV-ish text: cells built from the characters that matter to a CSV reader.
const csvChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', 'b', 'x', '1', '9', '.', '-', '_', ' ') },
  { weight: 4, arbitrary: fc.constantFrom(',', '"', '""', '\n', '\r', '\r\n', '\t', ';') },
  { weight: 2, arbitrary: fc.constantFrom('é', '€', '用', '😀', '\uFEFF', '\u0000', '\uFFFD', '=', '@', '+') },
);
const csvCell = fc.oneof(
  fc.array(csvChar, { maxLength: 8 }).map((a) => a.join('')),
  fc.array(csvChar, { maxLength: 8 }).map((a) => `"${a.join('')}"`),
  fc.constantFrom('app_user_id', 'fetch_token', 'platform', 'ios', 'android', 'receipt', '$email', 'price', 'currency', 'guest', ''),
);
const csvText = fc
  .record({
    bom: fc.boolean(),
    rows: fc.array(fc.array(csvCell, { minLength: 1, maxLength: 5 }), { maxLength: 8 }),
    eol: fc.constantFrom('\n', '\r\n', '\r'),
    finalEol: fc.boolean(),
  })
  .map(({ bom, rows, eol, finalEol }) => `${bom ? '\uFEFF' : ''}${rows.map((r) => r.join(',')).join(eol)}${finalEol && rows.length > 0 ? eol : ''}`);
const chunkSizes = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 4 });

// ---------------------------------------------------------------------------------------------------------------

describe('readCsvStream over any input', () => {
  it('never throws on arbitrary bytes, whatever the chunking, and yields records and problems at increasing lines', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), chunkSizes, fc.constantFrom(undefined, false), async (bytes, sizes, gzip) => {
        checkItems(await read(bytes, { sizes, ...(gzip === undefined ? {} : { gzip }) }));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('never throws on CSV-ish text (quotes, commas, CR/LF, BOM, multibyte, NUL), and the chunking never changes the result', async () => {
    await fc.assert(
      fc.asyncProperty(csvText, chunkSizes, async (text, sizes) => {
        const bytes = utf8(text);
        const whole = await read(bytes);
        checkItems(whole);
        expect(await read(bytes, { sizes })).toEqual(whole);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('reads UTF-16 (with a byte order mark) as the same text in UTF-8', async () => {
    await fc.assert(
      fc.asyncProperty(csvText, chunkSizes, fc.boolean(), async (text, sizes, bigEndian) => {
        const body = text.replace(/^\uFEFF/, '');
        const le = Buffer.from(body, 'utf16le');
        const utf16 = bigEndian ? Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(le).swap16()]) : Buffer.concat([Buffer.from([0xff, 0xfe]), le]);
        const items = await read(utf16, { sizes });
        checkItems(items);
        // Lone surrogates cannot be in generated text, so UTF-16 and UTF-8 hold the same characters.
        expect(items).toEqual(await read(utf8(body)));
      }),
      { seed: SEED, numRuns: 150 },
    );
  });

  it('reads UTF-16LE without a byte order mark, given --encoding utf16le, as the same text in UTF-8', async () => {
    await fc.assert(
      fc.asyncProperty(csvText, chunkSizes, async (text, sizes) => {
        const body = text.replace(/^\uFEFF/, '');
        const items = await read(Buffer.from(body, 'utf16le'), { sizes, encoding: 'utf16le' });
        checkItems(items);
        // A literal U+FFFD is reported as text not valid in the encoding read, which the reason names.
        const asUtf8 = (i: CsvItem): CsvItem =>
          i.kind === 'problem'
            ? {
                ...i,
                reason: i.reason
                  .replace('not valid UTF-16LE', 'not valid UTF-8')
                  .replace('check that the file is UTF-16LE, or pass the --encoding it was saved in', 'save the file as UTF-8'),
              }
            : i;
        expect(items.map(asUtf8)).toEqual(await read(utf8(body)));
      }),
      { seed: SEED, numRuns: 150 },
    );
  });

  it('reads windows-1252 (and latin1) bytes, given the encoding, as the same text in UTF-8', async () => {
    // The characters windows-1252 has in 0x80-0x9F, and every Latin-1 one from 0xA0; anything else becomes "?".
    const extra = '€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ';
    const extraBytes = [
      0x80, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8e, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9e, 0x9f,
    ];
    const byteOf = (ch: string): number => {
      const i = extra.indexOf(ch);
      if (i !== -1) return extraBytes[i] as number;
      const code = ch.codePointAt(0) ?? 0x3f;
      return code < 0x80 || (code >= 0xa0 && code <= 0xff) ? code : 0x3f;
    };
    const cp1252Text = fc.tuple(csvText, fc.array(fc.constantFrom(...extra, 'é', 'ß', 'Ø', '¿', '\u00a0'), { maxLength: 6 })).map(([text, more]) => {
      // Sprinkle the 0x80-0x9F characters into the CSV-ish text, then keep only what windows-1252 can hold.
      const mixed = text.replace(/x/g, () => more.pop() ?? 'x');
      return Array.from(mixed, (ch) => (byteOf(ch) === 0x3f && ch !== '?' ? '?' : ch)).join('');
    });
    await fc.assert(
      fc.asyncProperty(cp1252Text, chunkSizes, fc.constantFrom<InputEncoding>('windows-1252', 'latin1'), async (text, sizes, encoding) => {
        const bytes = Buffer.from(Array.from(text, byteOf));
        const items = await read(bytes, { sizes, encoding });
        checkItems(items);
        expect(items).toEqual(await read(utf8(text)));
      }),
      { seed: SEED, numRuns: 150 },
    );
  });

  it('a sep= hint before any text: the same items one line later, whatever the chunking; sep=; reads the table with , and ; swapped', async () => {
    const swap = (t: string): string => t.replace(/[,;]/g, (c) => (c === ',' ? ';' : ','));
    const shape = (items: CsvItem[]): unknown[] => items.map((i) => (i.kind === 'record' ? { line: i.line, columns: i.columns, values: i.values } : { line: i.line }));
    await fc.assert(
      fc.asyncProperty(csvText, chunkSizes, fc.constantFrom('\n', '\r\n', '\r'), async (text, sizes, eol) => {
        const bom = text.startsWith('\uFEFF') ? '\uFEFF' : '';
        const body = text.slice(bom.length);
        // A CR ending the hint line and an LF starting the text would be one line break (CRLF), not two.
        if (eol === '\r' && body.startsWith('\n')) eol = '\r\n';
        const plain = await read(utf8(text));
        const later = plain.map((i) => ({ ...i, line: i.line + 1 }));
        const hinted = await read(utf8(`${bom}sep=,${eol}${body}`), { sizes });
        checkItems(hinted);
        expect(hinted).toEqual(later);
        // The same table with ; between columns and , inside cells (and the other way round), read with sep=;.
        const semicolons = await read(utf8(`${bom}sep=;${eol}${swap(body)}`), { sizes });
        checkItems(semicolons);
        const back = semicolons.map((i) =>
          i.kind === 'record'
            ? { line: i.line, columns: i.columns.map(swap), values: Object.fromEntries(Object.entries(i.values).map(([k, v]) => [swap(k), swap(v)])) }
            : { line: i.line },
        );
        expect(back).toEqual(shape(later));
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('gives the same items for gzip-compressed bytes as for the bytes themselves, and never throws on cut-off gzip', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 2000 }), csvText.map(utf8)), chunkSizes, fc.double({ min: 0, max: 1, noNaN: true }), async (bytes, sizes, cut) => {
        const gz = gzipSync(bytes);
        const plain = await read(bytes, { gzip: false });
        expect(await read(gz, { sizes })).toEqual(plain); // sniffed by its magic
        expect(await read(gz, { sizes, gzip: true })).toEqual(plain);
        const truncated = await read(gz.subarray(0, Math.floor(gz.length * cut)), { sizes, gzip: true });
        checkItems(truncated);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('skips a record over the size limit as one problem at its line and leaves every other item as it was', async () => {
    // Against a small limit, records of a few dozen bytes are "oversized": the reader must agree with csv-parse on
    // where each record ends, or other records would change or vanish.
    await fc.assert(
      fc.asyncProperty(csvText, chunkSizes, fc.integer({ min: 4, max: 40 }), async (text, sizes, limit) => {
        const bytes = utf8(text);
        const unlimited = await read(bytes, { maxRecordBytes: Number.MAX_SAFE_INTEGER });
        const limited = await read(bytes, { sizes, maxRecordBytes: limit });
        checkItems(limited);
        const oversized = new Set(limited.filter((i) => i.kind === 'problem' && /is longer than \d+ bytes/.test(i.reason)).map((i) => i.line));
        const elsewhere = (i: CsvItem): boolean => !oversized.has(i.line);
        const headerTooLong = limited.some((i) => i.kind === 'problem' && i.reason.startsWith('the header row is longer than'));
        if (headerTooLong) {
          // The header problem, then one problem per later record at the line the unlimited reader has an item for
          // (a record, or that header's own problems): nothing after an unusable header is read, and nothing vanishes.
          const [header, ...after] = limited;
          const headerLine = header?.line;
          expect(after.every((i) => i.kind === 'problem')).toBe(true);
          for (const i of after) {
            if (!oversized.has(i.line) && i.kind === 'problem' && !i.reason.startsWith('a quoted field opened in this row is never closed')) {
              expect(i.reason).toBe(`not read: the header of this file is unusable (${header?.kind === 'problem' ? header.reason : ''})`);
            }
          }
          const lines = (items: CsvItem[]): number[] => items.filter((i) => elsewhere(i) && i.line !== headerLine).map((i) => i.line);
          expect(lines(after)).toEqual(lines(unlimited));
          return;
        }
        // Everything not at the line of a skipped record is exactly what the unlimited reader yields (there, such a
        // line held a record, a problem, a blank record or an unclosed quote).
        expect(limited.filter(elsewhere)).toEqual(unlimited.filter(elsewhere));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('csv-stringify → readCsvStream round trip', () => {
  const cellText = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.array(fc.constantFrom('a', 'Z', '0', ',', '"', '\n', '\r\n', '\r', ' ', '\t', ';', '=', 'é', '🙂', '\u0000'), { maxLength: 10 }).map((a) => a.join('')),
  );
  const safe = (s: string): boolean => !s.includes('\uFFFD');
  const headerName = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }).filter((s) => safe(s) && s.trim() === s && s !== '' && !s.includes('\r') && !s.includes('\n'));
  const table = fc
    .uniqueArray(headerName, { minLength: 1, maxLength: 6 })
    .chain((header) =>
      fc.record({ header: fc.constant(header), rows: fc.array(fc.array(cellText.filter(safe), { minLength: header.length, maxLength: header.length }), { maxLength: 8 }) }),
    );

  it('reads back every cell written (line breaks inside cells come back as LF; blank rows are skipped)', async () => {
    await fc.assert(
      fc.asyncProperty(table, fc.boolean(), fc.constantFrom<'unix' | 'windows'>('unix', 'windows'), chunkSizes, async ({ header, rows }, quoted, eol, sizes) => {
        // As the report writers do (default options: LF, and cells with CR or LF quoted); CRLF needs
        // quote_record_delimiter, or csv-stringify would leave a lone LF or CR in a cell unquoted.
        const text = stringify([header, ...rows], eol === 'unix' ? { quoted } : { quoted, record_delimiter: eol, quote_record_delimiter: true });
        const items = await read(utf8(text), { sizes });
        expect(items.filter((i) => i.kind === 'problem')).toEqual([]);
        const normalize = (c: string): string => c.replace(/\r\n?/g, '\n');
        const expected = rows.map((r) => r.map(normalize)).filter((r) => !r.every((c) => c.trim() === ''));
        const got = records(items);
        expect(got.map((r) => r.columns.map((c) => r.values[c]))).toEqual(expected);
        for (const r of got) expect(r.columns).toEqual(header);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('validateRow over any record and any column plan', () => {
  const realNames = [
    ...RECEIPT_FIELD_NAMES,
    ...Object.keys(COLUMN_ALIASES),
    ...EXPECTATION_COLUMNS,
    '$email',
    '$displayName',
    '$note',
    'notes',
    'App_User_ID',
    ' Receipt ',
    'X-Platform',
  ];
  const columnName = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...realNames) },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 6 }).map((s) => `$${s}`) },
  );
  // Headers: mostly one user column, one token column and maybe a platform column among others (so that many
  // plans are usable), sometimes anything at all.
  const likelyHeader = fc
    .record({
      user: fc.constantFrom('app_user_id', 'user_id', 'App_User_ID'),
      token: fc.constantFrom('fetch_token', 'receipt', 'token', 'subscription_token', 'purchase_token', ' Receipt '),
      platform: fc.option(fc.constantFrom('platform', 'store', 'X-Platform'), { nil: undefined }),
      extras: fc.uniqueArray(columnName, { maxLength: 6 }),
      order: fc.integer(),
    })
    .map(({ user, token, platform: p, extras, order }) => {
      const cols = [...new Set([user, token, ...(p ? [p] : []), ...extras])];
      const k = Math.abs(order) % cols.length;
      return [...cols.slice(k), ...cols.slice(0, k)];
    });
  const columns = fc.oneof({ weight: 3, arbitrary: likelyHeader }, { weight: 1, arbitrary: fc.uniqueArray(columnName, { minLength: 1, maxLength: 8 }) });
  const platform = fc.constantFrom<Platform>(...PLATFORMS);

  const fieldValue = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('ios', 'android', 'amazon', 'stripe', 'roku', 'Apple', ' play_store ', 'windows') },
    { weight: 3, arbitrary: fc.constantFrom('user-1', 'sub_abc', 'tok-123', 'pro.monthly', 'amzn1.account.X', '9.99', '0', '-1', '1e3', '9,99', 'USD', 'eur', 'dollars') },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'true',
        'FALSE',
        'yes',
        'maybe',
        '0',
        '1',
        '2',
        'free_trial',
        'pay-up-front',
        'P1M',
        'p1y2m',
        'PT',
        'US',
        'usa',
        '203.0.113.7',
        '::1',
        '999.1.1.1',
      ),
    },
    { weight: 2, arbitrary: fc.constantFrom(...APP_USER_ID_BLOCKLIST, ' guest ', '[object Object]', 'a/b', ' lead', 'trail ') },
    { weight: 2, arbitrary: fc.constantFrom('', ' ', '\t', '\n', '=HYPERLINK("x","y")', '+1', '@SUM(1)', '2026-12-31T00:00:00Z', 'soon', 'production', 'sandbox') },
    { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    { weight: 1, arbitrary: fc.integer({ min: 95, max: 105 }).map((n) => 'u'.repeat(n)) },
    { weight: 1, arbitrary: fc.integer({ min: 495, max: 505 }).map((n) => 'v'.repeat(n)) },
  );

  const planCase = columns.chain((cols) =>
    fc.record({
      cols: fc.constant(cols),
      platform: fc.option(platform, { nil: undefined }),
      map: fc.option(fc.dictionary(fc.constantFrom(...cols), fc.constantFrom(...RECEIPT_FIELD_NAMES, 'platform', '$mapped', 'nonsense'), { maxKeys: 2 }), { nil: undefined }),
      attributes: fc.option(fc.subarray(cols, { maxLength: Math.min(2, cols.length) }), { nil: undefined }),
      // a record from the file (every column) or an arbitrary object (missing and extra keys)
      values: fc.oneof(
        fc.tuple(...cols.map(() => fieldValue)).map((vs) => Object.fromEntries(cols.map((c, i) => [c.trim(), vs[i] ?? '']))),
        fc.dictionary(fc.oneof(fc.constantFrom(...cols), fc.string({ maxLength: 6 })), fieldValue, { maxKeys: 10 }),
      ),
    }),
  );

  it('never throws; ok means a body RevenueCat would accept, otherwise a reason', () => {
    let plans = 0;
    let oks = 0;
    fc.assert(
      fc.property(planCase, ({ cols, platform: p, map, attributes, values }) => {
        const opts: ColumnOptions = { ...(p ? { platform: p } : {}), ...(map ? { map } : {}), ...(attributes ? { attributes } : {}) };
        const planned = planColumns(cols, opts);
        if ('error' in planned) {
          expect(planned.error.length).toBeGreaterThan(0);
          return;
        }
        plans++;
        const result = validateRow(values, planned.plan, { ...(p ? { platform: p } : {}), now: () => 1_700_000_000_000 });
        if (!result.ok) {
          expect(typeof result.reason).toBe('string');
          expect(result.reason.trim().length).toBeGreaterThan(0);
          return;
        }
        oks++;
        const { body, platform: rowPlatform } = result;
        expect(PLATFORMS).toContain(rowPlatform);
        expect(typeof body.app_user_id).toBe('string');
        expect(appUserIdProblem(body.app_user_id)).toBeUndefined();
        expect(typeof body.fetch_token).toBe('string');
        expect(body.fetch_token.trim()).not.toBe('');
        const sent = body as unknown as Record<string, unknown>;
        for (const field of RECEIPT_FIELD_NAMES) {
          const support = fieldSupport(field, rowPlatform);
          const value = sent[field];
          if (support === 'required') expect(value === undefined || value === '', `${field} required for ${rowPlatform}`).toBe(false);
          if (support === 'no') expect(value, `${field} not for ${rowPlatform}`).toBeUndefined();
          if (value === undefined) continue;
          switch (RECEIPT_FIELDS[field].type) {
            case 'number':
              expect(typeof value === 'number' && Number.isFinite(value) && value >= 0).toBe(true);
              break;
            case 'currency':
              expect(ISO_4217.has(value as string)).toBe(true);
              break;
            case 'boolean':
              expect(typeof value).toBe('boolean');
              break;
            case 'payment_mode':
              expect([0, 1, 2]).toContain(value);
              break;
            case 'duration':
              expect(isIsoDuration(value as string)).toBe(true);
              break;
            case 'country':
              expect(value).toMatch(/^[A-Z]{2}$/);
              break;
            case 'string':
              expect(typeof value).toBe('string');
          }
        }
        expect(sent.price === undefined).toBe(sent.currency === undefined);
        for (const key of Object.keys(sent)) expect(key === 'attributes' || Object.hasOwn(RECEIPT_FIELDS, key), key).toBe(true);
        for (const [name, attribute] of Object.entries(body.attributes ?? {})) {
          expect(name.length).toBeGreaterThan(0);
          expect(attribute.value.trim()).toBe(attribute.value);
          expect(attribute.value.length).toBeGreaterThan(0);
          expect(attribute.value.length).toBeLessThanOrEqual(MAX_ATTRIBUTE_VALUE_LENGTH);
          expect(attribute.updated_at_ms).toBe(1_700_000_000_000);
        }
      }),
      { seed: SEED, numRuns: 4000 },
    );
    // The generators reach the interesting part: usable plans, and rows that pass.
    expect(plans).toBeGreaterThan(400);
    expect(oks).toBeGreaterThan(50);
  });

  it('reading, planning, validating and reading expectations never throw on CSV-ish input', async () => {
    await fc.assert(
      fc.asyncProperty(csvText, fc.option(platform, { nil: undefined }), async (text, p) => {
        const items = await read(utf8(`app_user_id,fetch_token,platform,price,currency,$email,expected_active\n${text}`));
        let planned: ReturnType<typeof planColumns> | undefined;
        for (const item of records(items)) {
          planned ??= planColumns(item.columns, p ? { platform: p } : {});
          if ('error' in planned) break;
          const result = validateRow(item.values, planned.plan, p ? { platform: p } : {});
          expect(result.ok || result.reason.length > 0).toBe(true);
          const expected = readExpectations(item.values);
          expect(expected.ok || expected.reason.length > 0).toBe(true);
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});
