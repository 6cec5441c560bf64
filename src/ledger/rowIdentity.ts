// What identifies a row in the ledger. The ledger keys every row by its fetch token (platform + token): that
// is what RevenueCat keys a purchase by, so it is what a conflict (one token, two users) and "already migrated"
// are about. Next to it, two short hashes, the user's and the payload's (everything that would be sent), tell a
// duplicate, a conflict, an unchanged row and a changed one apart. Fixed-width binary, because the ledger keeps
// one of each per row. The ingester computes them to admit a row, the ledger again for the cross-run index when
// the row succeeds: the same functions, here.
//
// Widths and their collision risk at 50 million rows (n²/2^(bits+1) for the key, 2^-bits per comparison for
// the hashes, which are only compared for rows whose token was seen before):
// - token fingerprint, 10 bytes (80 bits): (5e7)² / 2^81 ≈ 1.0e-9 that any two of 50 M tokens share a key (a run's
//   rows, or the cross-run index after 50 M migrated tokens); such a pair would look like one token seen twice;
// - user hash and payload hash, 6 bytes (48 bits) each: a different user (or a changed payload) taken for the
//   same one with probability 2^-48 ≈ 3.6e-15 per comparison, ≈ 1.8e-7 if all 50 M rows were compared.
import { createHash } from 'node:crypto';
import type { Platform, ReceiptBody } from '../revenuecat/fields.js';

/** Bytes of a token fingerprint (the ledger's key of a row). */
export const TOKEN_FINGERPRINT_BYTES = 10;
/** Bytes of a user hash and of a payload hash. */
export const SHORT_HASH_BYTES = 6;

function lengthPrefixed(parts: readonly string[]): ReturnType<typeof createHash> {
  const hash = createHash('sha256');
  for (const part of parts) {
    hash.update(`${Buffer.byteLength(part, 'utf8')}:`);
    hash.update(part, 'utf8');
  }
  return hash;
}

/** The ledger's key of a token: sha256 of platform and token (length-prefixed), first 10 bytes. */
export function tokenFingerprint(platform: Platform, fetchToken: string): Buffer {
  return lengthPrefixed(['token', platform, fetchToken]).digest().subarray(0, TOKEN_FINGERPRINT_BYTES);
}

/** A row's key as text (job ids, reports): base64url of its token fingerprint (14 characters). */
export function recordKey(platform: Platform, fetchToken: string): string {
  return tokenFingerprint(platform, fetchToken).toString('base64url');
}

/** 6 bytes that tell two App User IDs apart (hashed: ids are personal data, and 100 characters long). */
export function userHash(appUserId: string): Buffer {
  return lengthPrefixed(['user', appUserId]).digest().subarray(0, SHORT_HASH_BYTES);
}

/**
 * The one definition of "the same payload", used at ingest (is this row already migrated, or changed?) and at
 * success (what the cross-run index remembers): platform, user, token and every field that would be sent,
 * attributes included, but not an attribute's `updated_at_ms`, which is the time the row was read.
 * The hash is of canonicalPayload's text, fed in parts: an App Store receipt is most of it (several KB), and
 * building the whole JSON text around it, then hashing that, copied the receipt twice more for every row.
 */
export function payloadHash(platform: Platform, body: ReceiptBody, plainToken = false): Buffer {
  const hash = createHash('sha256');
  for (const part of canonicalParts(platform, body, plainToken)) hash.update(part, 'utf8');
  return hash.digest().subarray(0, SHORT_HASH_BYTES);
}

/** Platform and body as JSON with sorted keys and without the attributes' timestamps. */
export function canonicalPayload(platform: Platform, body: ReceiptBody): string {
  return canonicalParts(platform, body).join('');
}

/** Characters JSON.stringify writes as they are: printable ASCII but for `"` and `\`. */
const JSON_PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * canonicalPayload's text in parts whose concatenation is JSON.stringify of the sorted fields: each field as
 * JSON.stringify writes an object's member, except that a fetch_token JSON leaves as it is (base64, base64url
 * and dots: every real token) is a part of its own, the token itself, instead of a copy of it in a longer text.
 * `plainToken`: the caller knows the token is such a one (an App Store token read: appstore/readToken.ts
 * plainToken), so the check, half the cost of hashing a receipt, is not made again. Either way the parts are the
 * same text, so the hash is too.
 */
function canonicalParts(platform: Platform, body: ReceiptBody, plainToken = false): string[] {
  const fields: Record<string, unknown> = { platform };
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined) continue;
    if (k === 'attributes') {
      // fromEntries defines properties, so an attribute named __proto__ stays an attribute
      fields[k] = sorted(Object.fromEntries(Object.entries(v as NonNullable<ReceiptBody['attributes']>).map(([name, a]) => [name, a.value])));
    } else fields[k] = v;
  }
  const parts: string[] = [];
  let text = '{';
  let first = true;
  const ordered = sorted(fields);
  // the object's own key order, as JSON.stringify takes it (sorted() made the object: its order is the sort's)
  for (const k of Object.keys(ordered)) {
    const v = ordered[k];
    const member = `${first ? '' : ','}${JSON.stringify(k)}:`;
    if (k === 'fetch_token' && typeof v === 'string' && (plainToken || JSON_PLAIN.test(v))) {
      parts.push(`${text}${member}"`, v);
      text = '"';
      first = false;
      continue;
    }
    const json = JSON.stringify(v);
    // a value JSON.stringify leaves out of an object (none a body holds; kept exact anyway)
    if (json === undefined) continue;
    text += member + json;
    first = false;
  }
  parts.push(`${text}}`);
  return parts;
}

function sorted<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
