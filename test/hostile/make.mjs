// Generates the hostile inputs that are binary, huge or byte-exact (invalid UTF-8, UTF-16, gzip, a 10 MB field,
// random bytes, CR line endings, tab-prefixed cells), so the repository does not carry them: git and editors
// would "fix" CRs and encodings, and nobody wants 10 MB blobs in history. The small text cases beside this
// script are plain files. test/hostile/cases.ts describes every file and what must become of each row.
//
//   node test/hostile/make.mjs [dir]     writes the files into dir (default: a new temp directory) and prints it
//
// The output is deterministic: random bytes come from a seeded PRNG, and nothing depends on the clock.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

/** Size of the "10 MB single field" (more than twice the reader's 4 MiB record limit). */
export const HUGE_FIELD_BYTES = 10 * 1024 * 1024;
/** Good rows after the bad one in bad-then-many-good.csv. */
export const MANY_GOOD_ROWS = 2000;
/** Rows in the gzip whose tail is cut off. */
export const TRUNCATED_GZIP_ROWS = 500;

const TOKEN_TAIL = 'abcdefghijklmnop';
const good = (slug, n, platform = 'ios') => `${platform},${slug}-u${n},${slug}-tok${n}-${TOKEN_TAIL},pro.monthly`;

/** mulberry32: a tiny seeded PRNG, so the "random" file is the same on every machine. */
function randomBytes(seed, length) {
  let a = seed >>> 0;
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

const b = (text) => Buffer.from(text, 'utf8');
const HEADER4 = 'platform,app_user_id,fetch_token,product_id';

/** name → content, in a stable order. */
function contents() {
  const files = {};

  // Invalid UTF-8 in three different columns, a valid multi-byte row and a literal U+FFFD (the trace of an
  // earlier bad conversion, reported the same way).
  files['invalid-utf8.csv'] = Buffer.concat([
    b(`${HEADER4}\n${good('iu', 2)}\n`),
    b(`ios,iu-u3,iu-tok3-`),
    Buffer.from([0xff, 0xfe]),
    b(`-${TOKEN_TAIL},pro.monthly\n`),
    b(`${good('iu', 4)}\n`),
    b('ios,iu-'),
    Buffer.from([0xc3, 0x28]),
    b(`,iu-tok5-${TOKEN_TAIL},pro.monthly\n`),
    b(`ios,iu-u6,iu-tok6-${TOKEN_TAIL},pro.monthly`),
    Buffer.from([0xe2, 0x82]),
    b('\n'),
    b(`ios,iu-u7-é€,iu-tok7-${TOKEN_TAIL},pro.monthly\n`),
    b(`ios,iu-u8,iu-tok8-${TOKEN_TAIL},pro.\uFFFDmonthly\n`),
    b(`${good('iu', 9)}\n`),
  ]);

  // The header itself is not UTF-8.
  files['header-invalid-utf8.csv'] = Buffer.concat([b('platform,app_'), Buffer.from([0xff]), b(`user_id,fetch_token\nios,hi-u2,hi-tok2-${TOKEN_TAIL}\n`)]);

  // UTF-16 with a byte order mark (what Excel's "Unicode text" writes), both byte orders, CRLF.
  const utf16Text = (slug) =>
    [HEADER4, good(slug, 2), `ios,${slug}-ü3-用户,${slug}-tok3-${TOKEN_TAIL},pro.monthly`, `ios,guest,${slug}-tok4-${TOKEN_TAIL},pro.monthly`, good(slug, 5)].join('\r\n') + '\r\n';
  files['utf16le-bom.csv'] = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(utf16Text('u16l'), 'utf16le')]);
  const be = Buffer.from(utf16Text('u16b'), 'utf16le');
  be.swap16();
  files['utf16be-bom.csv'] = Buffer.concat([Buffer.from([0xfe, 0xff]), be]);
  // UTF-16 without a byte order mark: not recognised; every row must still end somewhere.
  files['utf16le-nobom.csv'] = Buffer.from(utf16Text('u16n'), 'utf16le');

  // A byte order mark and a header, nothing else.
  files['bom-header-only.csv'] = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b('platform,app_user_id,fetch_token\r\n')]);

  // gzip: a good one (with one bad row), one cut off part-way, and a ".gz" that is plain text.
  files['gzip-good.csv.gz'] = gzipSync(
    b([HEADER4, ...Array.from({ length: 50 }, (_, i) => (i === 8 ? `ios,nil,gz-tok${i + 2}-${TOKEN_TAIL},pro.monthly` : good('gz', i + 2)))].join('\n') + '\n'),
  );
  const full = gzipSync(b([HEADER4, ...Array.from({ length: TRUNCATED_GZIP_ROWS }, (_, i) => good('tg', i + 2))].join('\n') + '\n'));
  files['truncated.csv.gz'] = full.subarray(0, Math.floor(full.length * 0.6));
  files['not-gzip.csv.gz'] = b(`${HEADER4}\n${good('ng', 2)}\n`);

  // One 10 MB unquoted field (a "receipt" far beyond any real one) between good rows.
  files['field-10mb.csv'] = Buffer.concat([
    b(`${HEADER4}\n${good('tm', 2)}\nios,tm-u3,tm-tok3-`),
    Buffer.alloc(HUGE_FIELD_BYTES, 0x41),
    b(`,pro.monthly\n${good('tm', 4)}\n${good('tm', 5)}\n${good('tm', 6)}\n`),
  ]);
  // One 10 MB quoted field holding 199 line breaks (lines 3-202), commas and doubled quotes, then good rows.
  const chunk = 'x'.repeat(Math.floor(HUGE_FIELD_BYTES / 200) - 8) + ',""q"",\n';
  const multi = chunk.repeat(199) + 'end';
  files['field-10mb-multiline.csv'] = b(
    `${HEADER4},notes\n${good('tn', 2)},\nios,tn-u3,tn-tok3-${TOKEN_TAIL},pro.monthly,"${multi}"\n${good('tn', 203)},\n${good('tn', 204)},ok\n`,
  );
  // 6 MB with no line break at all: the "header" is longer than any record may be.
  files['one-huge-line.csv'] = Buffer.alloc(6 * 1024 * 1024, 0x78);

  // Binary files named .csv: a PNG (its signature holds a CRLF and a lone LF) and seeded random bytes.
  const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' + '1f15c4890000000d49444154789c6364f8cfc0f01f0005000201', 'hex');
  files['binary-png.csv'] = Buffer.concat([png, randomBytes(7, 2048), Buffer.from('0000000049454e44ae426082', 'hex')]);
  files['binary-random.csv'] = randomBytes(42, 64 * 1024);

  // Formula injection in app_user_id and in an attribute, including tab- and CR-prefixed cells (a CR is a line
  // break to the reader, so the quoted CR cells span two lines).
  files['formula-injection.csv'] = b(
    [
      'platform,app_user_id,fetch_token,product_id,$note',
      `ios,"=HYPERLINK(""evil.example"",""click"")",fi-tok2-${TOKEN_TAIL},pro.monthly,`,
      `ios,+1,fi-tok3-${TOKEN_TAIL},pro.monthly,`,
      `ios,-1+1,fi-tok4-${TOKEN_TAIL},pro.monthly,`,
      `ios,@SUM(1),fi-tok5-${TOKEN_TAIL},pro.monthly,`,
      `ios,"=HYPERLINK(""http://evil.example/x"",""click"")",fi-tok6-${TOKEN_TAIL},pro.monthly,`,
      `ios,\t=1+1,fi-tok7-${TOKEN_TAIL},pro.monthly,`,
      `ios,"\r=1+1",fi-tok8-${TOKEN_TAIL},pro.monthly,`, // lines 8-9
      `ios,-1,fi-tok10-${TOKEN_TAIL},pro.monthly,`,
      `ios,fi-u11,fi-tok11-${TOKEN_TAIL},pro.monthly,"=HYPERLINK(""evil.example"",""x"")"`,
      `ios,fi-u12,fi-tok12-${TOKEN_TAIL},pro.monthly,+1`,
      `ios,fi-u13,fi-tok13-${TOKEN_TAIL},pro.monthly,-1+1`,
      `ios,fi-u14,fi-tok14-${TOKEN_TAIL},pro.monthly,@SUM(1)`,
      `ios,fi-u15,fi-tok15-${TOKEN_TAIL},pro.monthly,\t=1+1`,
      `ios,fi-u16,fi-tok16-${TOKEN_TAIL},pro.monthly,"\r=2+2"`, // lines 16-17
      `ios,=1+1,fi-tok18-${TOKEN_TAIL},pro.monthly,=cmd|' /C calc'!A0`,
      `${good('fi', 19)},`,
    ].join('\n') + '\n',
  );

  // CRLF, LF and lone CR mixed, a quoted CRLF inside a field (lines 6-7), a blank CRLF line and no final newline.
  files['line-endings-mixed.csv'] = b(
    `${HEADER4},notes\r\n${good('le', 2)},\n${good('le', 3)},\r\n${good('le', 4)},\rios,guest,le-tok5-${TOKEN_TAIL},pro.monthly,\r\n` +
      `${good('le', 6)},"two\r\nlines"\n${good('le', 8)},\r\n\r\n${good('le', 10)},`,
  );

  // One bad row, then many good ones: the bad row must not stop or shift anything after it.
  files['bad-then-many-good.csv'] = b(
    [HEADER4, `ios,null,mg-tok2-${TOKEN_TAIL},pro.monthly`, ...Array.from({ length: MANY_GOOD_ROWS }, (_, i) => good('mg', i + 3, i % 2 ? 'ios' : 'android'))].join('\n') + '\n',
  );

  return files;
}

/** Writes every generated file into dir; returns the names written. */
export function generate(dir) {
  mkdirSync(dir, { recursive: true });
  const files = contents();
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return Object.keys(files);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'rc-migrate-hostile-'));
  const names = generate(dir);
  console.log(`${names.length} files written to ${dir}`);
}
