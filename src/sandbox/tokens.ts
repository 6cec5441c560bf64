// The deterministic fetch-token scheme (README.md, "Token scheme"): test data says in the token itself what
// the "store" will answer, so a CSV fully determines a rehearsal's outcome without a real store.
import { CODES } from './codes.js';

export const DIRECTIVE_PATTERN = /sbx[-_.]([a-z]+)(\d*)/i;

export const DIRECTIVES = [
  'active',
  'expired',
  'lifetime',
  'invalid',
  'inuse',
  'otheruser',
  'storedown',
  'flaky',
  'quota',
  'noproduct',
  'transfer',
  'toomany',
  'missingproduct',
  'badkey',
  'noretry',
  'busy',
] as const;
export type DirectiveName = (typeof DIRECTIVES)[number];

export interface Directive {
  /** `none` when the token carries no directive, `unknown` when the word is not one of DIRECTIVES. */
  name: DirectiveName | 'none' | 'unknown';
  /** The word as written (lower-cased), e.g. `flaky`; empty for `none`. */
  word: string;
  /** The trailing number (flaky's N), undefined when absent. */
  count: number | undefined;
  /** Stats / X-Sandbox-Directive label: `active`, `flaky2`, `unknown:foo`, `none`. */
  label: string;
}

const KNOWN = new Set<string>(DIRECTIVES);

export function readDirective(fetchToken: string): Directive {
  const match = DIRECTIVE_PATTERN.exec(fetchToken);
  if (!match) return { name: 'none', word: '', count: undefined, label: 'none' };
  const word = (match[1] ?? '').toLowerCase();
  const digits = match[2] ?? '';
  const count = digits === '' ? undefined : Number(digits);
  if (!KNOWN.has(word)) return { name: 'unknown', word, count, label: `unknown:${word}${digits}` };
  return { name: word as DirectiveName, word, count, label: `${word}${digits}` };
}

export type Grant = 'subscription' | 'expired' | 'lifetime' | 'nothing' | 'transfer';

export type TokenOutcome = { kind: 'grant'; grant: Grant } | { kind: 'error'; status: number; code?: number; message: string; headers?: Record<string, string> };

/**
 * What the store "says" for a token. `priorAttempts` is how many times this exact token already reached
 * the store (only flaky reads it).
 */
export function outcomeFor(directive: Directive, priorAttempts: number): TokenOutcome {
  const error = (status: number, code: number, message: string): TokenOutcome => ({ kind: 'error', status, code, message });
  switch (directive.name) {
    case 'none':
    case 'unknown': // Unknown words behave like no directive; the label still shows them in stats.
    case 'active':
      return { kind: 'grant', grant: 'subscription' };
    case 'expired':
      return { kind: 'grant', grant: 'expired' };
    case 'lifetime':
      return { kind: 'grant', grant: 'lifetime' };
    case 'noproduct':
      return { kind: 'grant', grant: 'nothing' };
    case 'transfer':
      return { kind: 'grant', grant: 'transfer' };
    case 'invalid':
      return error(400, CODES.invalidReceipt, 'The receipt is not valid.');
    case 'inuse':
      return error(400, CODES.cannotTransfer, 'The receipt is already in use by another subscriber and cannot be transferred.');
    case 'otheruser':
      return error(400, CODES.purchaseBelongsToOtherUser, 'The purchase belongs to another user.');
    case 'storedown':
      return error(500, CODES.storeProblem, 'There was a problem with the store: it could not be reached.');
    case 'flaky': {
      const failures = directive.count ?? 1;
      if (priorAttempts < failures) {
        return error(500, CODES.storeProblem, `There was a problem with the store (sandbox flaky: failure ${priorAttempts + 1} of ${failures}).`);
      }
      return { kind: 'grant', grant: 'subscription' };
    }
    case 'quota':
      return error(500, CODES.playStoreQuota, 'Play Store quota exceeded. Please slow down and retry later.');
    case 'toomany':
      return error(400, CODES.tooManyReceipts, 'This subscriber already has more than 100 Apple receipts.');
    case 'missingproduct':
      return error(400, CODES.productMissingInReceipt, 'The purchased product is missing in the Apple receipt.');
    case 'badkey':
      return error(401, CODES.invalidApiKey, 'Invalid API key. Use your public SDK key (sandbox badkey directive).');
    case 'noretry':
      // A retryable-looking answer the server marks as not worth trying again (RevenueCat's SDKs honour it).
      return { kind: 'error', status: 500, code: CODES.internalError, message: 'Internal server error (sandbox noretry directive).', headers: { 'Is-Retryable': 'false' } };
    case 'busy': {
      // 529: the token is being processed (RevenueCat sends it; a retry after a few seconds is right).
      const times = directive.count ?? 1;
      if (priorAttempts < times) {
        return { kind: 'error', status: 529, message: `The token is being processed (sandbox busy: ${priorAttempts + 1} of ${times}).`, headers: { 'Retry-After': '1' } };
      }
      return { kind: 'grant', grant: 'subscription' };
    }
  }
}

/** Counts how often each flaky (or busy) token reached the store, so `sbx-flaky<N>` fails exactly N times. */
export class FlakyTokens {
  private readonly attempts = new Map<string, number>();

  /** Records an attempt and returns how many came before it. */
  attempt(fetchToken: string): number {
    const prior = this.attempts.get(fetchToken) ?? 0;
    this.attempts.set(fetchToken, prior + 1);
    return prior;
  }

  clear(): void {
    this.attempts.clear();
  }
}
