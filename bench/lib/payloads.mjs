// A receipts CSV shaped like a real export, for the scenarios that measure memory and throughput: what Redis
// holds per queued job and per failed row depends on the payload, and 70-byte tokens hide it.
//
//   App Store  base64 of a StoreKit-1-like receipt (a DER/PKCS#7 header, "MII…", then random bytes), 2–8 KB
//              of text each (uniform, mean 5 KB): a receipt carries the whole purchase history
//   Play       a ~150-character purchase token in Google's alphabet (24 lowercase letters, ".", "AO-J1O",
//              then base64url), with one of a few product ids
//   Stripe     `sub_` + 24 alphanumerics (no product, price or currency: Stripe rows do not take them)
//   columns    app_user_id (UUIDs and $RCAnonymousID:…), price/currency (on most store rows), the attributes
//              $email and $displayName (sent), and account_created_at (not sent, kept for failed.csv)
//
// A few % of rows carry a sandbox directive that makes the "store" refuse them (src/sandbox/README.md, token
// scheme): invalid (400/7103), inuse (7102), otheruser (7852) and, on App Store rows, missingproduct (7712).
// All are permanent answers, so they fail at once instead of retrying with backoff, and failures exist the
// way they do in a real migration. Another 5% carry `expired`
// (200, a lapsed subscription). Random parts never contain "sbx", so no other row trips a directive.
//
// The bytes come from an AES-128-CTR keystream seeded by `seed`: the same (rows, options) give the same file,
// fast (the million-row file is ~2 GB). The file is streamed to disk, never held in memory.
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export const PAYLOAD_HEADER = 'platform,app_user_id,fetch_token,product_id,price,currency,$email,$displayName,account_created_at';

/** Share of rows per platform. */
export const DEFAULT_MIX = Object.freeze({ ios: 0.4, android: 0.45, stripe: 0.15 });

/** Refusals (shares of all rows) and the answer the sandbox gives each. */
export const DEFAULT_REFUSALS = Object.freeze([
  { directive: 'invalid', share: 0.015, answer: '400 / 7103 invalid receipt' },
  { directive: 'inuse', share: 0.005, answer: '400 / 7102 receipt in use by another user' },
  { directive: 'otheruser', share: 0.005, answer: '400 / 7852 purchase belongs to another user' },
  { directive: 'missingproduct', share: 0.005, answer: '400 / 7712 product missing in the Apple receipt (App Store rows only; others get invalid)' },
]);
export const EXPIRED_SHARE = 0.05;

export const APPLE_MIN_CHARS = 2048;
export const APPLE_MAX_CHARS = 8192;
const GOOGLE_TOKEN_CHARS = 150;
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const IOS_PRODUCTS = ['com.example.app.premium.monthly', 'com.example.app.premium.annual', 'com.example.app.pro.monthly'];
const GOOGLE_PRODUCTS = ['premium_monthly', 'premium_annual', 'pro_monthly:monthly-autorenew'];
const PRICES = [
  ['4.99', 'USD'],
  ['9.99', 'USD'],
  ['39.99', 'USD'],
  ['4.49', 'EUR'],
  ['49.99', 'EUR'],
  ['3.99', 'GBP'],
];
/** PKCS#7 signedData: SEQUENCE (long form, 2 length bytes), OID 1.2.840.113549.1.7.2, [0] — what "MII…" receipts start with. */
const PKCS7_HEAD = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x82];

/** 32-bit integer hash of (seed, i, salt): per-row choices that do not depend on the keystream's position. */
function mix32(seed, i, salt) {
  let h = (Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(seed + salt * 0x632be5ab, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}
const unit = (seed, i, salt) => mix32(seed, i, salt) / 2 ** 32;

/** Characters of `alphabet` from keystream bytes (byte modulo its length; the tiny bias does not matter here). */
function charsFrom(bytes, alphabet) {
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}
const noSbx = (s) => (/sbx/i.test(s) ? s.replace(/s(?=bx)/gi, 'q') : s);

/** The user of row i: `spread` puts a user's rows users-apart, `grouped` next to each other. */
function userIndex(i, rows, rowsPerUser, order) {
  const users = Math.ceil(rows / rowsPerUser);
  return order === 'grouped' ? Math.floor(i / rowsPerUser) : i % users;
}

/**
 * A generator of rows. `next(i)` must be called with i = 0, 1, 2, … in order (the keystream is sequential).
 * Options: tag (keeps scenarios' users apart), rowsPerUser, order, mix, refusals, expiredShare, seed.
 */
export function payloadRows(rows, { tag = 'p', rowsPerUser = 2, order = 'spread', mix = DEFAULT_MIX, refusals = DEFAULT_REFUSALS, expiredShare = EXPIRED_SHARE, seed = 1 } = {}) {
  const key = createHash('sha256').update(`rc-migrate bench payloads ${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(APPLE_MAX_CHARS);
  const bytes = (n) => cipher.update(zeros.subarray(0, n));
  const platforms = Object.entries(mix);
  const totalShare = platforms.reduce((a, [, s]) => a + s, 0);

  const platformOf = (i) => {
    let r = unit(seed, i, 1) * totalShare;
    for (const [p, share] of platforms) {
      if ((r -= share) < 0) return p;
    }
    return platforms[platforms.length - 1][0];
  };
  const directiveOf = (i, platform) => {
    let r = unit(seed, i, 2);
    for (const { directive, share } of refusals) {
      if ((r -= share) < 0) return directive === 'missingproduct' && platform !== 'ios' ? 'invalid' : directive;
    }
    return r - expiredShare < 0 ? 'expired' : undefined;
  };
  const userOf = (u) => {
    const h = createHash('md5').update(`${tag}:${seed}:${u}`).digest('hex');
    if (mix32(seed, u, 3) % 10 < 3) return `$RCAnonymousID:${h}`;
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };

  const appleReceipt = (directive) => {
    const chars = APPLE_MIN_CHARS + (mix32(seed, counter, 4) % (APPLE_MAX_CHARS - APPLE_MIN_CHARS + 1));
    const n = Math.floor((chars * 3) / 4);
    const raw = bytes(n);
    const body = n - 4;
    raw[0] = 0x30;
    raw[1] = 0x82;
    raw[2] = (body >> 8) & 0xff;
    raw[3] = body & 0xff;
    for (let k = 0; k < PKCS7_HEAD.length; k++) raw[4 + k] = PKCS7_HEAD[k];
    let text = raw.toString('base64');
    // '/' ends the directive's word (base64 letters would otherwise run on into it); base64 itself never has
    // "sbx" followed by - _ or ., so nothing else in a receipt reads as a directive.
    if (directive) {
      const insert = `sbx-${directive}/`;
      text = text.slice(0, 40) + insert + text.slice(40 + insert.length);
    }
    return text;
  };
  const googleToken = (directive) => {
    const head = charsFrom(bytes(24), LOWER);
    const mark = directive ? `sbx-${directive}.` : '';
    const rest = charsFrom(bytes(GOOGLE_TOKEN_CHARS - 25 - 6 - mark.length), B64URL);
    return noSbx(head) + '.' + mark + 'AO-J1O' + noSbx(rest);
  };
  const stripeId = (directive) => `sub_${directive ? `sbx_${directive}_` : ''}${noSbx(charsFrom(bytes(directive ? 14 : 24), ALNUM))}`;

  let counter = 0;
  return {
    /** One row as CSV cells (in PAYLOAD_HEADER order) plus what it is. */
    next(i) {
      counter = i;
      const platform = platformOf(i);
      const directive = directiveOf(i, platform);
      const u = userIndex(i, rows, rowsPerUser, order);
      const user = userOf(u);
      const fetchToken = platform === 'ios' ? appleReceipt(directive) : platform === 'android' ? googleToken(directive) : stripeId(directive);
      const pick = mix32(seed, i, 5);
      const product = platform === 'ios' ? IOS_PRODUCTS[pick % IOS_PRODUCTS.length] : platform === 'android' ? GOOGLE_PRODUCTS[pick % GOOGLE_PRODUCTS.length] : '';
      const [price, currency] = platform !== 'stripe' && pick % 10 !== 0 ? PRICES[(pick >>> 4) % PRICES.length] : ['', ''];
      const email = mix32(seed, u, 6) % 10 < 6 ? `u${user.slice(-8)}@example.com` : '';
      const name = mix32(seed, u, 7) % 10 < 3 ? `User ${u}` : '';
      const created = new Date(Date.UTC(2016, 0, 1) + (mix32(seed, u, 8) % 3000) * 86_400_000).toISOString().slice(0, 10);
      return { platform, directive, cells: [platform, user, fetchToken, product, price, currency, email, name, created] };
    },
  };
}

/** A zeroed tally of what a payload file holds. */
function emptyStats() {
  return { rows: 0, bytes: 0, byPlatform: {}, byDirective: {}, refused: 0 };
}

/**
 * Writes `rows` rows after the header to `path`. Resolves with what the file holds: bytes, mean row bytes,
 * per platform the rows and mean token size, per directive the rows, and how many rows the sandbox refuses.
 */
export async function writePayloadCsv(path, rows, opts = {}) {
  const gen = payloadRows(rows, opts);
  const refusing = new Set((opts.refusals ?? DEFAULT_REFUSALS).map((r) => r.directive));
  const stats = emptyStats();
  const out = createWriteStream(path, { highWaterMark: 1 << 20 });
  const write = async (text) => {
    stats.bytes += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, 'drain');
  };
  await write(`${PAYLOAD_HEADER}\n`);
  const BLOCK = 2000;
  for (let start = 0; start < rows; start += BLOCK) {
    let block = '';
    for (let i = start; i < Math.min(rows, start + BLOCK); i++) {
      const r = gen.next(i);
      const line = `${r.cells.join(',')}\n`;
      block += line;
      const p = (stats.byPlatform[r.platform] ??= { rows: 0, tokenBytes: 0, rowBytes: 0 });
      p.rows++;
      p.tokenBytes += r.cells[2].length;
      p.rowBytes += line.length;
      const d = r.directive ?? 'none';
      stats.byDirective[d] = (stats.byDirective[d] ?? 0) + 1;
      if (refusing.has(d)) stats.refused++;
    }
    await write(block);
  }
  out.end();
  await once(out, 'close');
  stats.rows = rows;
  stats.meanRowBytes = Math.round((stats.bytes - PAYLOAD_HEADER.length - 1) / rows);
  for (const p of Object.values(stats.byPlatform)) {
    p.meanTokenBytes = Math.round(p.tokenBytes / p.rows);
    p.meanRowBytes = Math.round(p.rowBytes / p.rows);
    delete p.tokenBytes;
    delete p.rowBytes;
  }
  stats.refusedShare = Math.round((stats.refused / rows) * 10_000) / 10_000;
  return stats;
}

/** One line about a payload file for the progress log. */
export function describePayloads(stats) {
  const parts = Object.entries(stats.byPlatform).map(([p, s]) => `${p} ${s.rows} (token ${s.meanTokenBytes} B)`);
  return `${stats.rows} rows, ${(stats.bytes / 2 ** 20).toFixed(1)} MiB, mean row ${stats.meanRowBytes} B; ${parts.join(', ')}; ${stats.refused} refused by the sandbox`;
}
