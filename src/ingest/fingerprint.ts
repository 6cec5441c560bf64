// A printable form of a token that does not reveal it (logs, reports, conflicts.csv). What identifies a row (the
// ledger's key of it, its token fingerprint, and the payload hash) is ../ledger/rowIdentity.ts.

/** Tokens shorter than this are masked entirely. */
export const MASK_MIN_LENGTH = 12;

/** `abcd…wxyz`: at most the first 4 and last 4 characters; tokens under 12 characters become `****`. */
export function maskToken(token: string): string {
  // Characters are code points; only the ends are split into them, since App Store receipts run to tens of KB
  // and every outcome masks its token. 8 UTF-16 units hold at least 4 whole code points at either end.
  if (token.length < 2 * MASK_MIN_LENGTH && Array.from(token).length < MASK_MIN_LENGTH) return '****';
  return `${Array.from(token.slice(0, 8)).slice(0, 4).join('')}…${Array.from(token.slice(-8)).slice(-4).join('')}`;
}
