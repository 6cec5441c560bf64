// Stable identity of one receipt submission, and a printable form of a token that does not reveal it. (What the
// ledger keys rows by, the token fingerprint and the payload hash, is ../ledger/rowIdentity.ts.)

import { createHash } from 'node:crypto';
import type { Platform } from '../revenuecat/fields.js';

/**
 * sha256 over platform, App User ID and fetch token, each prefixed with its UTF-8 byte length
 * (`<len>:<bytes>`), so no choice of values can make two different triples hash the same input.
 * base64url, first 22 characters (132 bits): shorter than hex, because the run ledger stores one per row.
 */
export function fingerprint(platform: Platform, appUserId: string, fetchToken: string): string {
  const hash = createHash('sha256');
  for (const part of [platform, appUserId, fetchToken]) {
    hash.update(`${Buffer.byteLength(part, 'utf8')}:`);
    hash.update(part, 'utf8');
  }
  return hash.digest('base64url').slice(0, 22);
}

/** Tokens shorter than this are masked entirely. */
export const MASK_MIN_LENGTH = 12;

/** `abcd…wxyz`: at most the first 4 and last 4 characters; tokens under 12 characters become `****`. */
export function maskToken(token: string): string {
  // Characters are code points; only the ends are split into them, since App Store receipts run to tens of KB
  // and every outcome masks its token. 8 UTF-16 units hold at least 4 whole code points at either end.
  if (token.length < 2 * MASK_MIN_LENGTH && Array.from(token).length < MASK_MIN_LENGTH) return '****';
  return `${Array.from(token.slice(0, 8)).slice(0, 4).join('')}…${Array.from(token.slice(-8)).slice(-4).join('')}`;
}
