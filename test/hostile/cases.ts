// The index of the hostile corpus: every file, what it is, and what must become of each of its rows.
// Plain text files live beside this one; `generated: true` files are written by make.mjs (binary, huge or
// byte-exact content). test/hostile.test.ts runs the whole pipeline over each file and checks, per file:
// every `bad` row is in rejected.csv at its line with a reason matching its regex, exactly `good` rows succeed
// (at `goodLines` when given), nothing fails, and rows_read = good + rejected + duplicates.
import type { Platform } from '../../src/revenuecat/fields.js';

export interface BadRow {
  line: number;
  /** The rejection reason must match: it names the field or column and says what is wrong or what to do. */
  reason: RegExp;
}

export interface HostileCase {
  file: string;
  /** What the file is (the kinds of hostile input it holds). */
  what: string;
  /** Written by make.mjs rather than kept in the repository. */
  generated?: boolean;
  /** `--platform` for the run (files without a platform column). */
  platform?: Platform;
  /** Rows that must be sent and succeed. */
  good: number;
  /** Exact lines of the good rows, where line counting is what the case is about. */
  goodLines?: number[];
  bad: BadRow[];
  duplicates?: number;
  /** App User IDs that must have reached the sandbox exactly as written (sent, not refused). */
  sentUsers?: string[];
  /** Attribute values that must have reached the sandbox: [app_user_id, attribute, value]. */
  sentAttributes?: [string, string, string][];
  /** Outcomes that depend on bytes the test cannot predict exactly; checked by name in the test. */
  special?: 'truncated-gzip' | 'random-bytes';
}

const each = (lines: number[], reason: RegExp): BadRow[] => lines.map((line) => ({ line, reason }));

const NO_USER_COLUMN = /^no column for app_user_id: name it app_user_id or user_id, or pass --map yourcolumn=app_user_id$/;
const BLOCKLISTED = (id: string): RegExp => new RegExp(`^app_user_id "${id.replace(/[[\]]/g, '\\$&')}" is a blocklisted value RevenueCat refuses$`);
const WHITESPACE = /^app_user_id has leading or trailing whitespace; App User IDs are compared exactly$/;
/** A regex matching exactly `text`. */
const exactly = (text: string): RegExp => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
/** A header problem at `line`, and each of `rows` (the non-blank rows after it) rejected at its own line with the header's reason. */
const badHeader = (line: number, reason: string, rows: number[]): BadRow[] => [
  { line, reason: exactly(reason) },
  ...each(rows, exactly(`not read: the header of this file is unusable (${reason})`)),
];
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const RAGGED = (fields: number, header: number): RegExp => exactly(`has ${fields} field${fields === 1 ? '' : 's'}, header has ${header}; check this row's quoting and commas`);

export const HOSTILE_CASES: HostileCase[] = [
  // --- quoting and shape -------------------------------------------------------------------------------------
  {
    file: 'quote-unclosed.csv',
    what: 'broken quoting: a quote opened mid-file is never closed (it swallows the rest of the file, which is said in the reason)',
    good: 2,
    goodLines: [2, 3],
    bad: [{ line: 4, reason: /^a quoted field opened in this row is never closed, so the rest of the file could not be read; fix the quotes in this row$/ }],
  },
  {
    file: 'quote-text-after-close.csv',
    what: 'broken quoting: text (and spaces) after a closing quote; a fully quoted row and a stray quote inside an unquoted value are fine',
    good: 5,
    goodLines: [2, 4, 5, 6, 8],
    bad: [
      { line: 3, reason: /^field 2 has text after its closing quote; quote the whole value and double any quote inside it \(""\)$/ },
      { line: 7, reason: /^field 3 has text after its closing quote/ },
    ],
  },
  {
    file: 'ragged.csv',
    what: 'ragged rows: one field too many, two too few, a single field',
    good: 4,
    goodLines: [2, 4, 6, 8],
    bad: [
      { line: 3, reason: RAGGED(7, 6) },
      { line: 5, reason: RAGGED(4, 6) },
      { line: 7, reason: RAGGED(1, 6) },
    ],
  },
  {
    file: 'blank-lines.csv',
    what: 'blank lines, whitespace-only lines (spaces, tabs) and comma-only lines before, between and after rows',
    good: 3,
    goodLines: [5, 9, 14],
    bad: [{ line: 12, reason: BLOCKLISTED('guest') }],
  },
  {
    file: 'line-endings-mixed.csv',
    what: 'CRLF, LF and lone CR mixed, a quoted CRLF inside a field, a blank CRLF line, no final newline',
    generated: true,
    good: 6,
    goodLines: [2, 3, 4, 6, 8, 10],
    bad: [{ line: 5, reason: BLOCKLISTED('guest') }],
  },
  {
    file: 'bad-then-many-good.csv',
    what: 'one bad row followed by 2,000 good rows (iOS and Google)',
    generated: true,
    good: 2000,
    bad: [{ line: 2, reason: BLOCKLISTED('null') }],
  },
  {
    file: 'duplicate-rows.csv',
    what: 'the same row twice (twice over): the repeats are duplicates, not sent again',
    good: 3,
    goodLines: [2, 3, 5],
    bad: [],
    duplicates: 2,
  },

  // --- encodings and file-level oddities ---------------------------------------------------------------------
  {
    file: 'invalid-utf8.csv',
    what: 'invalid UTF-8 bytes in fetch_token, app_user_id and product_id (a cut-off sequence), a literal U+FFFD; valid multi-byte text is fine',
    generated: true,
    good: 4,
    goodLines: [2, 4, 7, 9],
    bad: [
      { line: 3, reason: /^not valid UTF-8 \(column "fetch_token"\); save the file as UTF-8$/ },
      { line: 5, reason: /^not valid UTF-8 \(column "app_user_id"\); save the file as UTF-8$/ },
      { line: 6, reason: /^not valid UTF-8 \(column "product_id"\); save the file as UTF-8$/ },
      { line: 8, reason: /^not valid UTF-8 \(column "product_id"\)/ },
    ],
  },
  {
    file: 'header-invalid-utf8.csv',
    what: "invalid UTF-8 in the header: the header is refused at line 1 and its row at line 2 with the header's reason",
    generated: true,
    good: 0,
    bad: badHeader(1, 'the header row is not valid UTF-8 (column 2); save the file as UTF-8', [2]),
  },
  {
    file: 'utf16le-bom.csv',
    what: 'UTF-16LE with a byte order mark and CRLF (Excel "Unicode text"), non-ASCII ids',
    generated: true,
    good: 3,
    goodLines: [2, 3, 5],
    bad: [{ line: 4, reason: BLOCKLISTED('guest') }],
  },
  {
    file: 'utf16be-bom.csv',
    what: 'UTF-16BE with a byte order mark',
    generated: true,
    good: 3,
    goodLines: [2, 3, 5],
    bad: [{ line: 4, reason: BLOCKLISTED('guest') }],
  },
  {
    file: 'utf16le-nobom.csv',
    what: 'UTF-16LE without a byte order mark: read as UTF-8 full of NULs; no row may be sent, every row must be accounted for',
    generated: true,
    good: 0,
    // CR NUL LF NUL: the CR and the LF are two line breaks, so each CRLF of the file counts as two lines and a
    // NUL-only "row" sits between the header and each real row (and two after the last). The "ü" row has a byte
    // that is not UTF-8.
    bad: [
      ...each([2, 4, 6, 8, 10, 11], RAGGED(1, 4)),
      ...each([3, 7, 9], NO_USER_COLUMN),
      { line: 5, reason: /^not valid UTF-8 \(column "\u0000a\u0000p\u0000p\u0000_\u0000u\u0000s\u0000e\u0000r\u0000_\u0000i\u0000d\u0000"\); save the file as UTF-8$/ },
    ],
  },
  { file: 'empty.csv', what: 'an empty file (0 bytes): no rows', good: 0, bad: [] },
  { file: 'header-only.csv', what: 'a header and nothing else: no rows', good: 0, bad: [] },
  { file: 'bom-header-only.csv', what: 'a UTF-8 byte order mark and a header (CRLF): no rows', generated: true, good: 0, bad: [] },
  {
    file: 'gzip-good.csv.gz',
    what: 'a gzip file with one bad row among 49 good ones',
    generated: true,
    good: 49,
    bad: [{ line: 10, reason: BLOCKLISTED('nil') }],
  },
  {
    file: 'truncated.csv.gz',
    what: 'a gzip file cut off at 60% of its bytes: the rows before the cut succeed, the cut is one rejection naming its line',
    generated: true,
    good: -1, // decided by where the cut falls; see special
    bad: [],
    special: 'truncated-gzip',
  },
  {
    file: 'not-gzip.csv.gz',
    what: 'a .gz that is not gzip data',
    generated: true,
    good: 0,
    bad: [{ line: 1, reason: /^the file is not valid gzip data \(.+\); nothing was read$/ }],
  },
  {
    file: 'field-10mb.csv',
    what: 'a 10 MB unquoted field on one line between good rows',
    generated: true,
    good: 4,
    goodLines: [2, 4, 5, 6],
    bad: [{ line: 3, reason: /^this row is longer than 4194304 bytes, more than any receipt needs, so it was skipped \(the rows after it were read\); shorten or remove it$/ }],
  },
  {
    file: 'field-10mb-multiline.csv',
    what: 'a 10 MB quoted field spanning 200 lines (commas and doubled quotes inside) between good rows',
    generated: true,
    good: 3,
    goodLines: [2, 203, 204],
    bad: [{ line: 3, reason: /^this row is longer than 4194304 bytes, more than any receipt needs, so it was skipped \(the rows after it were read\); shorten or remove it$/ }],
  },
  {
    file: 'one-huge-line.csv',
    what: '6 MB without a line break: the "header" is longer than a record may be',
    generated: true,
    good: 0,
    bad: badHeader(1, 'the header row is longer than 4194304 bytes, so this is not a CSV file with a header row; check that it is the right file', []),
  },
  {
    file: 'binary-png.csv',
    what: 'a PNG image named .csv: the "header" is refused, then each "row" after it at its line (line 16 is blank)',
    generated: true,
    good: 0,
    bad: badHeader(1, 'the header row is not valid UTF-8 (column 1); save the file as UTF-8', [...range(2, 15), ...range(17, 30)]),
  },
  {
    file: 'binary-random.csv',
    what: '64 KiB of (seeded) random bytes named .csv',
    generated: true,
    good: 0,
    bad: [],
    special: 'random-bytes',
  },

  // --- header problems: the whole file ----------------------------------------------------------------------
  { file: 'missing-app-user-id.csv', what: 'no app_user_id column (a "user" column is not one)', good: 0, bad: each([2, 3, 4], NO_USER_COLUMN) },
  {
    file: 'missing-token.csv',
    what: 'no token column',
    good: 0,
    bad: each([2, 3], /^no column for fetch_token: name it fetch_token, receipt, token, subscription_token or purchase_token, or pass --map yourcolumn=fetch_token$/),
  },
  {
    file: 'missing-platform.csv',
    what: 'no platform column and no --platform',
    good: 0,
    bad: each([2, 3], /^no platform: add a platform column \(store or x-platform work too\) or pass --platform \(one of ios, android, /),
  },
  {
    file: 'platform-requires-column.csv',
    what: '--platform android on a file without product_id',
    platform: 'android',
    good: 0,
    bad: each([2, 3], /^android rows require product_id: add a product_id column, or pass --map yourcolumn=product_id$/),
  },
  {
    file: 'duplicate-header.csv',
    what: "duplicate header names: the header is refused at line 1, each row after it at its line with the header's reason",
    good: 0,
    bad: badHeader(1, 'column "app_user_id" appears twice in the header (columns 2 and 4); rename or remove one', [2, 3]),
  },
  {
    file: 'duplicate-field-columns.csv',
    what: 'two columns for one field (receipt and token)',
    good: 0,
    bad: each([2, 3], /^columns "receipt" and "token" would all be fetch_token; remove all but one, or choose with --map receipt=fetch_token$/),
  },
  {
    file: 'header-empty-name.csv',
    what: "a header with an empty column name: the header is refused at line 1, each row after it at its line with the header's reason",
    good: 0,
    bad: badHeader(1, 'column 3 of the header has no name; name it or delete the column', [2, 3]),
  },
  {
    file: 'header-names-padded.csv',
    what: 'header names in odd case with spaces around them (accepted)',
    good: 2,
    bad: [],
  },
  {
    file: 'attribute-name-bad.csv',
    what: 'an attribute column whose name has a space',
    good: 0,
    bad: each([2, 3], /^attribute name "\$my note" contains whitespace, which RevenueCat refuses; rename the column or use --map$/),
  },
  {
    file: 'semicolon.csv',
    what: 'a semicolon-separated file',
    good: 0,
    bad: each([2, 3, 4], /^the header is a single column "platform;app_user_id;fetch_token": the file seems to use ";" between columns; save it as comma-separated CSV$/),
  },

  {
    file: 'sep-hint.csv',
    what: 'Excel\'s "sep=;" first line (CRLF): semicolons between columns, commas and semicolons inside quoted cells, the file\'s own line numbers',
    good: 3,
    goodLines: [3, 4, 8],
    bad: [
      { line: 5, reason: BLOCKLISTED('guest') },
      { line: 6, reason: exactly('has 3 fields, header has 5; check this row\'s quoting and ";" separators') },
    ],
    sentAttributes: [
      ['sh-u3', '$note', 'Smith, Jane'],
      ['sh-u4', '$note', 'semi;colon'],
      ['sh-u8', '$note', 'a "quoted" one'],
    ],
  },
  {
    file: 'sep-hint-unusable.csv',
    what: 'a "sep=" first line naming no usable separator: refused at line 1, every row accounted for with that reason',
    good: 0,
    bad: badHeader(
      1,
      'the first line "sep=ab" is a separator hint that cannot be used: write it as sep= followed by one character such as ; | or a tab (not a letter, digit, space or quote), or delete the line',
      [2, 3, 5],
    ),
  },

  // --- row rules ---------------------------------------------------------------------------------------------
  {
    file: 'platform-values.csv',
    what: 'unknown platform values (windows, "ios."), an empty platform cell without --platform; aliases Apple, google, " play_store " accepted',
    good: 5,
    goodLines: [2, 4, 5, 7, 9],
    bad: [
      { line: 3, reason: /^platform "windows" is not one RevenueCat accepts; use one of ios, android, amazon, macos, uikitformac, stripe, roku, paddle$/ },
      { line: 6, reason: /^the platform cell is empty and no --platform was given; fill it in \(ios, android, / },
      { line: 8, reason: /^platform "ios\." is not one RevenueCat accepts/ },
    ],
  },
  {
    file: 'app-user-id-rules.csv',
    what: 'every App User ID rule: empty, 101 characters (100 is fine), "/", each blocklisted value in odd case, leading/trailing spaces, whitespace only',
    good: 3,
    goodLines: [4, 21, 22],
    bad: [
      { line: 2, reason: /^app_user_id is empty$/ },
      { line: 3, reason: /^app_user_id is 101 characters long; RevenueCat allows at most 100$/ },
      { line: 5, reason: /^app_user_id contains "\/", which RevenueCat refuses$/ },
      ...['null', 'NULL', 'None', 'nil', 'anonymous', 'Guest', '-1', '0', '[object Object]', 'undefined', 'NaN'].map((id, i) => ({ line: 6 + i, reason: BLOCKLISTED(id) })),
      { line: 17, reason: WHITESPACE },
      { line: 18, reason: WHITESPACE },
      { line: 19, reason: /^app_user_id is empty$/ },
      { line: 20, reason: BLOCKLISTED(' guest ') },
    ],
  },
  {
    file: 'price-currency.csv',
    what: 'non-ISO currency, price without currency, currency without price, negative price, "9,99", 1e3, abc, Infinity, 0x10; padded " 4.99 "/" eur " and 0 JPY are fine',
    good: 4,
    goodLines: [2, 10, 11, 14],
    bad: [
      { line: 3, reason: /^currency "dollars" is not an ISO 4217 code such as USD or EUR$/ },
      { line: 4, reason: /^price is given without currency; give both \(for example 9\.99 and USD\) or neither$/ },
      { line: 5, reason: /^currency is given without price; give both/ },
      { line: 6, reason: /^price -1 is negative; it must be 0 or more$/ },
      { line: 7, reason: /^price "9,99" is not a plain decimal number such as 9\.99$/ },
      { line: 8, reason: /^price "1e3" is not a plain decimal number/ },
      { line: 9, reason: /^price "abc" is not a plain decimal number/ },
      { line: 12, reason: /^price "Infinity" is not a plain decimal number/ },
      { line: 13, reason: /^price "0x10" is not a plain decimal number/ },
    ],
  },
  {
    file: 'store-fields.csv',
    what: 'store-incompatible fields (payment_mode on android, store_user_id on ios, product_id on stripe and roku), Google without product_id, Amazon without store_user_id, Stripe with price',
    good: 4,
    goodLines: [2, 9, 10, 11],
    bad: [
      { line: 3, reason: /^payment_mode is iOS\/macOS only; remove it for android rows$/ },
      { line: 4, reason: /^store_user_id is Amazon only; remove it for ios rows$/ },
      { line: 5, reason: /^product_id is empty; it is required for android rows$/ },
      { line: 6, reason: /^store_user_id is empty; it is required for amazon rows$/ },
      { line: 7, reason: /^price is not accepted for stripe rows; remove it$/ },
      { line: 8, reason: /^product_id is not accepted for stripe rows; remove it$/ },
      { line: 12, reason: /^product_id is not accepted for roku rows; remove it$/ },
    ],
  },
  {
    file: 'field-types.csv',
    what: 'bad payment_mode (3, monthly), bad boolean, bad ISO 8601 durations (1 month, P, PT), bad store_country (USA, 1A), bad ip_address',
    good: 3,
    goodLines: [2, 11, 13],
    bad: [
      { line: 3, reason: /^payment_mode "3" must be 0 \(pay_as_you_go\), 1 \(pay_up_front\) or 2 \(free_trial\)$/ },
      { line: 4, reason: /^payment_mode "monthly" must be 0/ },
      { line: 5, reason: /^is_restore "maybe" must be true or false \(1\/0 and yes\/no work too\)$/ },
      { line: 6, reason: /^normal_duration "1 month" is not an ISO 8601 duration such as P1M, P1Y or P7D$/ },
      { line: 7, reason: /^normal_duration "P" is not an ISO 8601 duration/ },
      { line: 8, reason: /^store_country "USA" must be a two-letter country code such as US$/ },
      { line: 9, reason: /^store_country "1A" must be a two-letter country code/ },
      { line: 10, reason: /^ip_address "999\.1\.1\.1" is not an IPv4 or IPv6 address$/ },
      { line: 12, reason: /^normal_duration "PT" is not an ISO 8601 duration/ },
    ],
  },
  {
    file: 'attribute-length.csv',
    what: 'attribute values over 500 characters ($note, $email); exactly 500 (also once padded with spaces) is fine',
    good: 3,
    goodLines: [2, 5, 6],
    bad: [
      { line: 3, reason: /^attribute \$note is 501 characters long; RevenueCat accepts at most 500$/ },
      { line: 4, reason: /^attribute \$email is 501 characters long; RevenueCat accepts at most 500$/ },
    ],
  },
  {
    file: 'expected-columns.csv',
    what: 'malformed expected_active and expected_expires_at',
    good: 2,
    goodLines: [2, 5],
    bad: [
      { line: 3, reason: /^expected_active "maybe" must be true or false$/ },
      { line: 4, reason: /^expected_expires_at "soon" is not a date: use ISO 8601 \(2026-12-31T00:00:00Z\) or epoch seconds$/ },
    ],
  },
  {
    file: 'formula-injection.csv',
    what: 'formula-injection cells (=HYPERLINK, +1, -1+1, @SUM, tab- and CR-prefixed, a DDE payload) in app_user_id and in an attribute',
    generated: true,
    // validateRow: "Formula-looking text (=, +, -, @ first) is data like any other: not refused here (report writers
    // escape it)". So such ids are sent; only the App User ID rules refuse some ("/", whitespace, "-1").
    good: 12,
    goodLines: [2, 3, 4, 5, 11, 12, 13, 14, 15, 16, 18, 19],
    bad: [
      { line: 6, reason: /^app_user_id contains "\/", which RevenueCat refuses$/ },
      { line: 7, reason: WHITESPACE },
      { line: 8, reason: WHITESPACE },
      { line: 10, reason: BLOCKLISTED('-1') },
    ],
    sentUsers: ['=HYPERLINK("evil.example","click")', '+1', '-1+1', '@SUM(1)', '=1+1'],
    sentAttributes: [
      ['fi-u11', '$note', '=HYPERLINK("evil.example","x")'],
      ['fi-u12', '$note', '+1'],
      ['fi-u13', '$note', '-1+1'],
      ['fi-u14', '$note', '@SUM(1)'],
      ['fi-u15', '$note', '=1+1'],
      ['fi-u16', '$note', '=2+2'],
      ['=1+1', '$note', "=cmd|' /C calc'!A0"],
    ],
  },
];
