// The binary forms of what the ledger keeps per row. A run has millions of rows and every byte here is paid
// once per row, so a row is a fixed-width key (its token fingerprint, ledger/rowIdentity.ts) and a record of a
// few dozen bytes, small enough for Redis to keep buckets of them as listpacks (≤ 64 bytes a value):
//
//   record   = kind (1 byte) · format (1 byte, FORMAT.row) · varint source number · varint line · user
//   user     = varint header · bytes   — the form: UTF-8 text, or a decimal number, a UUID, hex, or
//              `$RCAnonymousID:` + hex packed into bytes (the usual shapes of App User IDs); the header is the
//              form, plus the byte length × 8 where it varies (encodeUser)
//   answered (succeeded or failed) adds: varint flags · ms since the run began · attempts when over 7 · http
//              status when not 200/201 · product (dictionary code) · the import answer's reconciliation
//              (product found, its expiry and environment, the active entitlements as dictionary codes with
//              their expiries) · expected_* columns · import mismatches
//   failed adds: varint RevenueCat code + 1 (0: none) · reason · message, each a dictionary code, or inline
//              when the dictionary is full (a message unique to its row must not grow it: see RunNumbering)
//
// What a finished row does not keep: its input cells, its request body, its masked token and the time it was
// queued. A failed row's input is read again from its source, by its place (source number and line), when
// failed.csv or `retry` need it; Redis keeps of it only what the ledger itself needs. Lua reads the record head
// only (kind, place, user: src/redis/scripts/includes/record.lua), and the record key's first byte picks the shard.
//
// Every stored form that outlives a run (row records, index values, conflicts, superseded rows) carries a format byte, so that a
// later version can tell its own forms from older ones (FORMAT).
import { PLATFORMS, type Platform } from '../revenuecat/fields.js';
import type { SubscriberSummary } from '../state/subscriberSummary.js';
import type { Expectations } from '../state/expectations.js';
import type { MismatchDetail } from '../state/mismatch.js';
import type { Outcome } from '../types.js';
import { SHARDS } from '../redis/keys.js';
import { SHORT_HASH_BYTES, TOKEN_FINGERPRINT_BYTES } from './rowIdentity.js';
import { ByteReader, ByteWriter } from './bytes.js';

/** Format bytes of the stored forms (a change of a form bumps its number; the Lua scripts write them too). */
export const FORMAT = {
  /** row records (second byte, after the kind) */
  row: 1,
  /** cross-run index values (first byte) */
  index: 1,
  /** conflicts (second byte, after held/sent) */
  conflict: 1,
  /** superseded rows' records (first byte); 1 held the row's user too (read again from its source since 2) */
  superseded: 2,
} as const;

function checkFormat(what: string, found: number, expected: number): void {
  if (found !== expected) throw new Error(`${what} of format ${found}, this version reads format ${expected}: a ledger written by another version of rc-migrate`);
}

/** First byte of a record. */
export const RECORD = {
  /** admitted and queued, no final answer yet */
  queued: 'q',
  /** skipped: an earlier run migrated the same token for the same user with the same payload */
  skipped: 'm',
  /** held: another user has this token, or a purchase it holds (conflicts hash says who) */
  held: 'h',
  /**
   * superseded after its lookup: a row given by a transaction id whose user's group holds a newer transaction of
   * the same purchase (supersedeQueued-4.lua; the superseded rows' table names that row)
   */
  superseded: 'x',
  succeeded: 's',
  /** failed: as compact as a success (reason and message through the run's dictionary) */
  failed: 'f',
} as const;
export type RecordKind = (typeof RECORD)[keyof typeof RECORD];

/** Longest value Redis keeps in a listpack hash by default (hash-max-listpack-value); longer records go to `wide`. */
export const LISTPACK_VALUE_MAX = 64;

// ---------------------------------------------------------------------------------------------------------
// Keys

/** The key's shard: its first byte (sha256 output, so uniform) modulo SHARDS. */
export function shardOfKey(key: Buffer): number {
  return (key[0] as number) % SHARDS;
}

/** A record key (token fingerprint, plus a variant byte for a second user's row of the same token) as text. */
export function keyText(key: Buffer): string {
  return key.toString('base64url');
}

export function keyBytes(text: string): Buffer {
  const key = Buffer.from(text, 'base64url');
  if (key.length !== TOKEN_FINGERPRINT_BYTES && key.length !== TOKEN_FINGERPRINT_BYTES + 1) throw new Error(`not a record key: ${text}`);
  return key;
}

// ---------------------------------------------------------------------------------------------------------
// Users

const USER_FORM = { text: 0, decimal: 1, uuid: 2, UUID: 3, hex: 4, anonymous: 5, anonymous16: 6 } as const;
const ANONYMOUS = '$RCAnonymousID:';
const UUID_LOWER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_UPPER = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;
const HEX_LOWER = /^(?:[0-9a-f]{2})+$/;
const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/;

function userForm(id: string): [number, Buffer] {
  if (DECIMAL.test(id) && Number.isSafeInteger(Number(id))) return [USER_FORM.decimal, new ByteWriter().varint(Number(id)).toBuffer()];
  if (UUID_LOWER.test(id)) return [USER_FORM.uuid, Buffer.from(id.replace(/-/g, ''), 'hex')];
  if (UUID_UPPER.test(id)) return [USER_FORM.UUID, Buffer.from(id.replace(/-/g, ''), 'hex')];
  if (HEX_LOWER.test(id)) return [USER_FORM.hex, Buffer.from(id, 'hex')];
  if (id.startsWith(ANONYMOUS) && HEX_LOWER.test(id.slice(ANONYMOUS.length))) {
    const bytes = Buffer.from(id.slice(ANONYMOUS.length), 'hex');
    return [bytes.length === 16 ? USER_FORM.anonymous16 : USER_FORM.anonymous, bytes];
  }
  return [USER_FORM.text, Buffer.from(id, 'utf8')];
}

/** Forms whose byte length is always 16, so the header holds the form alone (one byte). */
const SIXTEEN = new Set<number>([USER_FORM.uuid, USER_FORM.UUID, USER_FORM.anonymous16]);

/**
 * An App User ID in its packed form: a varint header (the form; and, for forms of varying length, the byte
 * length × 8 + form), then the bytes. Equal ids give equal bytes, so Lua compares users byte for byte.
 */
export function encodeUser(id: string): Buffer {
  const [form, bytes] = userForm(id);
  return new ByteWriter()
    .varint(SIXTEEN.has(form) ? form : bytes.length * 8 + form)
    .bytes(bytes)
    .toBuffer();
}

function readUser(r: ByteReader): string {
  const header = r.varint();
  const bytes = r.bytes(SIXTEEN.has(header % 8) ? 16 : Math.floor(header / 8));
  switch (header % 8) {
    case USER_FORM.decimal:
      return String(new ByteReader(bytes).varint());
    case USER_FORM.uuid:
    case USER_FORM.UUID: {
      const hex = bytes.toString('hex');
      const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
      return header % 8 === USER_FORM.UUID ? uuid.toUpperCase() : uuid;
    }
    case USER_FORM.hex:
      return bytes.toString('hex');
    case USER_FORM.anonymous:
    case USER_FORM.anonymous16:
      return ANONYMOUS + bytes.toString('hex');
    default:
      return bytes.toString('utf8');
  }
}

// ---------------------------------------------------------------------------------------------------------
// Record heads (every kind)

/** Source number and line, as records and conflicts store a place. */
export function encodePlace(sourceNumber: number, line: number): Buffer {
  return new ByteWriter().varint(sourceNumber).varint(line).toBuffer();
}

/** A record of a row without a final answer: kind, format, place, user (as admit-4.lua writes it). */
export function headRecord(kind: RecordKind, place: Buffer, user: Buffer): Buffer {
  return Buffer.concat([Buffer.from(kind, 'latin1'), Buffer.from([FORMAT.row]), place, user]);
}

export interface RecordHead {
  kind: RecordKind;
  sourceNumber: number;
  line: number;
  appUserId: string;
}

function readHead(r: ByteReader): RecordHead {
  const kind = String.fromCharCode(r.byte()) as RecordKind;
  checkFormat('a row record', r.byte(), FORMAT.row);
  const sourceNumber = r.varint();
  const line = r.varint();
  return { kind, sourceNumber, line, appUserId: readUser(r) };
}

// ---------------------------------------------------------------------------------------------------------
// Times

const TIME = { null: 0, sameAsProduct: 1, text: 2, first: 3 } as const;
const TIME_FORM = { seconds: 0, secondsMs: 1, ms: 2 } as const;
const zigzag = (n: number): number => (n < 0 ? -2 * n - 1 : 2 * n);
const unzigzag = (z: number): number => (z % 2 === 1 ? -(z + 1) / 2 : z / 2);

/**
 * An ISO time as the API gave it, packed so that it comes back as the very same string: seconds (or ms) from
 * `ref` (epoch seconds: the row's finish, so that an expiry a month later takes 4 bytes), and which of the ISO
 * forms it had; anything else as text.
 */
function writeTime(w: ByteWriter, value: string | null | undefined, ref: number, product?: string | null): void {
  if (value === null || value === undefined) {
    w.varint(TIME.null);
    return;
  }
  if (product !== undefined && value === product) {
    w.varint(TIME.sameAsProduct);
    return;
  }
  const ms = Date.parse(value);
  if (!Number.isNaN(ms)) {
    const iso = new Date(ms).toISOString();
    let packed: number | undefined;
    if (ms % 1000 === 0 && iso.replace('.000Z', 'Z') === value) packed = zigzag(ms / 1000 - ref) * 3 + TIME_FORM.seconds;
    else if (ms % 1000 === 0 && iso === value) packed = zigzag(ms / 1000 - ref) * 3 + TIME_FORM.secondsMs;
    else if (iso === value) packed = zigzag(ms - ref * 1000) * 3 + TIME_FORM.ms;
    if (packed !== undefined && Number.isSafeInteger(packed + TIME.first)) {
      w.varint(packed + TIME.first);
      return;
    }
  }
  w.varint(TIME.text).string(value);
}

function readTime(r: ByteReader, ref: number, product?: string | null): string | null {
  const v = r.varint();
  if (v === TIME.null) return null;
  if (v === TIME.sameAsProduct) return product ?? null;
  if (v === TIME.text) return r.string();
  const packed = v - TIME.first;
  const form = packed % 3;
  const n = unzigzag(Math.floor(packed / 3));
  if (form === TIME_FORM.ms) return new Date(n + ref * 1000).toISOString();
  const iso = new Date((n + ref) * 1000).toISOString();
  return form === TIME_FORM.seconds ? iso.replace('.000Z', 'Z') : iso;
}

// ---------------------------------------------------------------------------------------------------------
// Answered rows (succeeded and failed)

const FOUND = ['subscription', 'non_subscription', 'absent', 'not_checked'] as const;
const ENVIRONMENTS = [undefined, 'production', 'sandbox'] as const;

// The flags varint: what almost every row has in the low 14 bits (two bytes), the rare cases above.
const F = {
  platform: 1, // bits 0-2: PLATFORMS index
  found: 8, // bits 3-4: FOUND index
  sandbox: 32, // bits 5-6: 0 unknown, 1 production, 2 sandbox
  product: 128, // the subscriber shows the row's product (its expiry follows)
  productId: 256,
  // the usual answer: exactly one active entitlement, granted by the row's product and expiring with it (only its id follows)
  oneEntitlement: 512,
  attempts: 1024, // bits 10-12: attempts 1-7; 0 = more (a varint follows)
  http201: 8192,
  originalDiffers: 16384,
  httpOther: 32768,
  noHttp: 65536,
  noSubscriber: 131072,
  expect: 262144,
  mismatches: 524288,
  pastGoogleCutoff: 1048576,
} as const;
const has = (flags: number, bit: number): boolean => Math.floor(flags / bit) % 2 === 1;

/** What encoding an answer needs besides the outcome: the source's number, the run's start and the dictionary. */
export interface RecordContext {
  sourceNumber: number;
  /** epoch ms the record's finish time counts from (the run's start) */
  base: number;
  /** dictionary code of a repeated string (product and entitlement ids): every one has a code */
  code: (text: string) => number;
  /** dictionary code of a failure's reason or message, when it has one (else it is kept inline) */
  textCode: (text: string) => number | undefined;
}

/** Every dictionary string an answer's record needs a code for (to have them ready). */
export function dictionaryStrings(o: Outcome): string[] {
  const out = new Set<string>();
  if (o.product_id !== undefined) out.add(o.product_id);
  for (const e of o.subscriber?.active_entitlements ?? []) {
    out.add(e.id);
    if (e.product_identifier !== o.product_id) out.add(e.product_identifier);
  }
  if (o.expect?.entitlement !== undefined) out.add(o.expect.entitlement);
  return [...out];
}

/** The strings of a failure that go through the dictionary while it has room (reason and message). */
export function failureStrings(o: Outcome): string[] {
  if (o.status !== 'failed') return [];
  return [o.reason, o.message].filter((t): t is string => t !== undefined);
}

// A failure's text field: 0 absent; 2 × (code + 1) a dictionary code; 2 × byte length + 1, then the UTF-8 bytes.
function writeText(w: ByteWriter, text: string | undefined, ctx: RecordContext): void {
  if (text === undefined) {
    w.varint(0);
    return;
  }
  const code = ctx.textCode(text);
  if (code !== undefined) {
    w.varint(2 * (code + 1));
    return;
  }
  const bytes = Buffer.from(text, 'utf8');
  w.varint(2 * bytes.length + 1).bytes(bytes);
}

function readText(r: ByteReader, ctx: DecodeContext): string | undefined {
  const v = r.varint();
  if (v === 0) return undefined;
  if (v % 2 === 0) return ctx.name(v / 2 - 1);
  return r.bytes((v - 1) / 2).toString('utf8');
}

/** The record of a succeeded or failed row (see the top of this file for what it keeps). */
export function encodeAnswer(o: Outcome, ctx: RecordContext): Buffer {
  const sub = o.subscriber;
  const platform = PLATFORMS.indexOf(o.platform);
  if (platform < 0) throw new Error(`unknown platform ${o.platform}`);
  const finished = Date.parse(o.finished_at);
  const ref = Math.floor(finished / 1000);
  const only = sub?.active_entitlements.length === 1 ? sub.active_entitlements[0] : undefined;
  const oneEntitlement = only !== undefined && sub?.product !== undefined && only.product_identifier === o.product_id && only.expires_date === sub.product.expires_date;
  let flags = platform * F.platform + (o.attempts >= 1 && o.attempts <= 7 ? o.attempts : 0) * F.attempts;
  if (sub) {
    flags += FOUND.indexOf(sub.product_found) * F.found;
    if (sub.product) flags += F.product + (sub.product.is_sandbox === undefined ? 0 : sub.product.is_sandbox ? 2 : 1) * F.sandbox;
    if (oneEntitlement) flags += F.oneEntitlement;
    if (sub.original_app_user_id !== o.app_user_id) flags += F.originalDiffers;
  } else flags += F.noSubscriber;
  if (o.http_status === undefined) flags += F.noHttp;
  else if (o.http_status === 201) flags += F.http201;
  else if (o.http_status !== 200) flags += F.httpOther;
  if (o.product_id !== undefined) flags += F.productId;
  if (o.expect) flags += F.expect;
  if (o.mismatches && o.mismatches.length > 0) flags += F.mismatches;
  if (o.past_google_cutoff === true) flags += F.pastGoogleCutoff;

  const kind = o.status === 'succeeded' ? RECORD.succeeded : RECORD.failed;
  const w = new ByteWriter().byte(kind.charCodeAt(0)).byte(FORMAT.row).varint(ctx.sourceNumber).varint(o.line).bytes(encodeUser(o.app_user_id));
  w.varint(flags).signed(finished - ctx.base);
  if (!(o.attempts >= 1 && o.attempts <= 7)) w.varint(o.attempts);
  if (has(flags, F.httpOther)) w.varint(o.http_status as number);
  if (o.product_id !== undefined) w.varint(ctx.code(o.product_id));
  if (sub) {
    const productExpiry = sub.product?.expires_date;
    if (sub.product) writeTime(w, productExpiry, ref);
    if (oneEntitlement) w.varint(ctx.code(only.id));
    else {
      w.varint(sub.active_entitlements.length);
      for (const e of sub.active_entitlements) {
        w.varint(ctx.code(e.id));
        writeTime(w, e.expires_date, ref, sub.product ? productExpiry : undefined);
        w.varint(e.product_identifier === o.product_id ? 0 : ctx.code(e.product_identifier) + 1);
      }
    }
    if (has(flags, F.originalDiffers)) w.string(sub.original_app_user_id);
  }
  if (o.expect) {
    const e = o.expect;
    const eflags =
      (e.entitlement !== undefined ? 1 : 0) +
      (e.expiresAt !== undefined ? 2 : 0) +
      (e.active !== undefined ? 4 : 0) +
      (e.active === true ? 8 : 0) +
      (e.environment === 'production' ? 16 : e.environment === 'sandbox' ? 32 : 0);
    w.varint(eflags);
    if (e.entitlement !== undefined) w.varint(ctx.code(e.entitlement));
    if (e.expiresAt !== undefined) writeTime(w, e.expiresAt, ref);
  }
  if (has(flags, F.mismatches)) w.string(JSON.stringify(o.mismatches));
  if (kind === RECORD.failed) {
    w.varint(o.code === undefined ? 0 : o.code + 1);
    writeText(w, o.reason, ctx);
    writeText(w, o.message, ctx);
  }
  return w.toBuffer();
}

/** What decoding needs: source names, the run's start and the dictionary. */
export interface DecodeContext {
  sources: readonly string[];
  base: number;
  name: (code: number) => string;
}

function sourceName(sources: readonly string[], n: number): string {
  return sources[n] ?? `source #${n}`;
}

/** The head of any record (the kind, place and user of its row). */
export function decodeHead(rec: Buffer): RecordHead {
  return readHead(new ByteReader(rec));
}

/** Whether a record holds a final answer (succeeded or failed). */
export function isAnswer(rec: Buffer): boolean {
  return rec[0] === RECORD.succeeded.charCodeAt(0) || rec[0] === RECORD.failed.charCodeAt(0);
}

/** A succeeded or failed row's outcome from its record (a failed one without its input, body or token). */
export function decodeAnswer(key: Buffer, rec: Buffer, ctx: DecodeContext): Outcome {
  const r = new ByteReader(rec);
  const head = readHead(r);
  if (head.kind !== RECORD.succeeded && head.kind !== RECORD.failed) throw new Error(`not an answer's record: ${head.kind}`);
  const flags = r.varint();
  const finished = r.signed() + ctx.base;
  const ref = Math.floor(finished / 1000);
  const packedAttempts = Math.floor(flags / F.attempts) % 8;
  const attempts = packedAttempts === 0 ? r.varint() : packedAttempts;
  const http = has(flags, F.noHttp) ? undefined : has(flags, F.httpOther) ? r.varint() : has(flags, F.http201) ? 201 : 200;
  const productId = has(flags, F.productId) ? ctx.name(r.varint()) : undefined;
  let subscriber: SubscriberSummary | undefined;
  if (!has(flags, F.noSubscriber)) {
    const env = Math.floor(flags / F.sandbox) % 4;
    let product: SubscriberSummary['product'];
    if (has(flags, F.product)) {
      product = { expires_date: readTime(r, ref) };
      if (env !== 0) product.is_sandbox = env === 2;
    }
    const entitlements: SubscriberSummary['active_entitlements'] = [];
    if (has(flags, F.oneEntitlement)) {
      entitlements.push({ id: ctx.name(r.varint()), expires_date: product?.expires_date ?? null, product_identifier: productId ?? '' });
    } else {
      for (let n = r.varint(); n > 0; n--) {
        const id = ctx.name(r.varint());
        const expires = readTime(r, ref, product ? product.expires_date : undefined);
        const productRef = r.varint();
        entitlements.push({ id, expires_date: expires, product_identifier: productRef === 0 ? (productId ?? '') : ctx.name(productRef - 1) });
      }
    }
    const original = has(flags, F.originalDiffers) ? r.string() : head.appUserId;
    subscriber = {
      original_app_user_id: original,
      active_entitlements: entitlements,
      product_found: FOUND[Math.floor(flags / F.found) % 4] as SubscriberSummary['product_found'],
      ...(product ? { product } : {}),
    };
  }
  let expect: Expectations | undefined;
  if (has(flags, F.expect)) {
    const e = r.varint();
    expect = {};
    if (e & 1) expect.entitlement = ctx.name(r.varint());
    if (e & 2) expect.expiresAt = readTime(r, ref) ?? undefined;
    if (e & 4) expect.active = (e & 8) !== 0;
    const environment = ENVIRONMENTS[Math.floor(e / 16) % 4];
    if (environment) expect.environment = environment;
  }
  const mismatches = has(flags, F.mismatches) ? (JSON.parse(r.string()) as MismatchDetail[]) : undefined;
  let failure: Pick<Outcome, 'code' | 'reason' | 'message'> = {};
  if (head.kind === RECORD.failed) {
    const code = r.varint();
    const reason = readText(r, ctx);
    const message = readText(r, ctx);
    failure = { ...(code > 0 ? { code: code - 1 } : {}), ...(reason !== undefined ? { reason } : {}), ...(message !== undefined ? { message } : {}) };
  }
  return {
    status: head.kind === RECORD.succeeded ? 'succeeded' : 'failed',
    src: sourceName(ctx.sources, head.sourceNumber),
    line: head.line,
    fp: keyText(key),
    platform: PLATFORMS[flags % 8] as Platform,
    app_user_id: head.appUserId,
    ...(productId !== undefined ? { product_id: productId } : {}),
    ...(http !== undefined ? { http_status: http } : {}),
    attempts,
    finished_at: new Date(finished).toISOString(),
    ...(subscriber ? { subscriber } : {}),
    ...(expect ? { expect } : {}),
    ...(mismatches ? { mismatches } : {}),
    ...(has(flags, F.pastGoogleCutoff) ? { past_google_cutoff: true } : {}),
    ...failure,
  };
}

// ---------------------------------------------------------------------------------------------------------
// History (outcomes a later one replaced) — written by the scripts, read here

/** A history entry: the key's length (1 byte), the key, then the replaced answer's record. */
export function decodeHistoryEntry(entry: Buffer, ctx: DecodeContext): Outcome {
  const r = new ByteReader(entry);
  const key = r.bytes(r.byte());
  return decodeAnswer(key, r.rest(), ctx);
}

// ---------------------------------------------------------------------------------------------------------
// The cross-run index

/** Bytes of the hashes after the format byte of an index value (user, then payload). */
export const INDEX_HASHES_BYTES = 2 * SHORT_HASH_BYTES;

/** An index value: format, user hash, payload hash, the migrating run's number and (when not 0) its record's variant. */
export function indexValue(userHash: Buffer, payloadHash: Buffer, runNumber: number, variant: number): Buffer {
  const w = new ByteWriter()
    .byte(FORMAT.index)
    .bytes(userHash)
    .bytes(payloadHash)
    .varint(runNumber * 2 + (variant > 0 ? 1 : 0));
  if (variant > 0) w.byte(variant);
  return w.toBuffer();
}

export interface IndexEntry {
  userHash: Buffer;
  payloadHash: Buffer;
  runNumber: number;
  variant: number;
}

export function decodeIndexValue(value: Buffer): IndexEntry {
  const r = new ByteReader(value);
  checkFormat('an index value', r.byte(), FORMAT.index);
  const userHash = r.bytes(SHORT_HASH_BYTES);
  const payloadHash = r.bytes(SHORT_HASH_BYTES);
  const run = r.varint();
  return { userHash, payloadHash, runNumber: Math.floor(run / 2), variant: run % 2 === 1 ? r.byte() : 0 };
}

// ---------------------------------------------------------------------------------------------------------
// Conflicts — written by admit-*.lua, read here

/** One conflict as admit recorded it, before names are looked up. */
export interface StoredConflict {
  held: boolean;
  /** this row's record key */
  key: Buffer;
  appUserId: string;
  /** the other side: a row of this run, or the index entry of an earlier run's */
  other:
    | { scope: 'run'; sourceNumber: number; line: number; appUserId: string }
    | { scope: 'earlier'; entry: IndexEntry }
    /** an earlier run's row that migrated the purchase: its run number and record key */
    | { scope: 'earlier-purchase'; runNumber: number; key: Buffer };
  /** a conflict by purchase: the App Store original transaction id both rows hold (absent: a shared token) */
  originalTransactionId?: string;
}

export function decodeConflict(value: Buffer): StoredConflict {
  const r = new ByteReader(value);
  const held = String.fromCharCode(r.byte()) === RECORD.held;
  checkFormat('a conflict', r.byte(), FORMAT.conflict);
  const scope = String.fromCharCode(r.byte());
  const key = r.bytes(r.varint());
  const appUserId = readUser(r);
  if (scope === 'r') {
    const sourceNumber = r.varint();
    const line = r.varint();
    return { held, key, appUserId, other: { scope: 'run', sourceNumber, line, appUserId: readUser(r) } };
  }
  if (scope === 'p') {
    const sourceNumber = r.varint();
    const line = r.varint();
    const other = readUser(r);
    return { held, key, appUserId, other: { scope: 'run', sourceNumber, line, appUserId: other }, originalTransactionId: r.rest().toString('utf8') };
  }
  if (scope === 'P') {
    // the purchase index entry (ledger/purchaseIndex.ts): format, user hash, run number, record key
    const entry = new ByteReader(r.bytes(r.varint()));
    checkFormat('a purchase index value', entry.byte(), FORMAT.index);
    entry.bytes(SHORT_HASH_BYTES);
    const runNumber = entry.varint();
    return { held, key, appUserId, other: { scope: 'earlier-purchase', runNumber, key: entry.rest() }, originalTransactionId: r.rest().toString('utf8') };
  }
  return { held, key, appUserId, other: { scope: 'earlier', entry: decodeIndexValue(r.rest()) } };
}

// ---------------------------------------------------------------------------------------------------------
// Superseded rows

/**
 * A superseded App Store row's record, under its place (encodePlace) in the superseded rows' table: format · the
 * carrier's place (varint source number, varint line): 5 bytes for a carrier in a file of up to 2 million lines. The
 * row's user is not kept: it is the carrier's, and superseded.csv reads it again from the row's source, by place
 * (ingest/reread.ts), as failed.csv reads failed rows' cells. The table's listpack buckets keep record and place
 * for ~17 B a row; with the user (format 1) ~35, as text in a plain hash ~99.
 */
export function encodeSuperseded(by: { sourceNumber: number; line: number }): Buffer {
  return new ByteWriter().byte(FORMAT.superseded).varint(by.sourceNumber).varint(by.line).toBuffer();
}

export interface StoredSuperseded {
  by: { sourceNumber: number; line: number };
}

export function decodeSuperseded(value: Buffer): StoredSuperseded {
  const r = new ByteReader(value);
  checkFormat("a superseded row's record", r.byte(), FORMAT.superseded);
  const sourceNumber = r.varint();
  const line = r.varint();
  return { by: { sourceNumber, line } };
}

/** The place a conflict is keyed by (encodePlace), back to numbers. */
export function decodePlace(place: Buffer): { sourceNumber: number; line: number } {
  const r = new ByteReader(place);
  return { sourceNumber: r.varint(), line: r.varint() };
}
