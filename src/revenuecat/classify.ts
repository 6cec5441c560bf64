// Turns an ApiResult into what the pipeline does next: record success, retry later, record a final failure,
// or stop the whole run (a configuration problem every later request would hit too).
// Rules: RevenueCat's error documentation and the backend error codes of its open-source SDKs. A backend code,
// when it is in the table, wins over the HTTP status.

import type { ApiResult } from './client.js';
import { bodyBackoffMs } from './retryAfter.js';
import { isSubscriber, type Subscriber } from './subscriber.js';

export type RetryClass = 'transient' | 'permanent' | 'fatal';

export type Classification =
  | { kind: 'success'; status: number; subscriber: Subscriber }
  | {
      kind: 'transient';
      status?: number;
      code?: number;
      reason: string;
      message: string;
      retryAfterMs?: number;
      rateLimited: boolean;
      userBusy: boolean;
      /** 529: the token is being processed; retried after a few seconds, never a sign of the rate limit */
      inProcess?: boolean;
    }
  | { kind: 'permanent'; status: number; code?: number; reason: string; message: string }
  | { kind: 'fatal'; status: number; code?: number; reason: string; message: string; cause: FatalCause };

/**
 * What a fatal answer is about, which decides what it stops (workers/processor.ts) and what may lift the stop:
 * - `key`: the key itself is refused (401, 7224, 7225): every row sent with that key stops, until another key is given;
 * - `access`: the key is known but may not do this (403): every row of the key stops; fixable in the dashboard;
 * - `store_credentials`: the app's store credentials are wrong (7104 App Store, 7107 Play): the rows of that
 *   platform stop; fixable in the dashboard, with the same key.
 */
export type FatalCause = 'key' | 'access' | 'store_credentials';

/** How a fatal message names the key it is about (keyRing.ts): never the key itself. */
export interface KeyDescription {
  /** the environment variable to fix, e.g. REVENUECAT_API_KEY_ANDROID */
  variable: string;
  /** the key's first characters, e.g. `goog_ab…` */
  label: string;
  /** whose rows: `android`, `ios/macos`, `all` (every row this process sends with the key) */
  rows: string;
}

export interface ErrorCodeInfo {
  meaning: string;
  retry: RetryClass;
}

/** RevenueCat backend error codes that matter to an import (from the BackendErrorCode lists of RevenueCat's open-source SDKs). */
export const ERROR_CODES: Readonly<Record<number, ErrorCodeInfo>> = Object.freeze({
  7000: { meaning: 'invalid platform', retry: 'permanent' },
  7101: { meaning: 'store problem (store could not be reached / answered badly)', retry: 'transient' },
  7102: { meaning: 'receipt already in use by another user (cannot transfer)', retry: 'permanent' },
  7103: { meaning: 'invalid receipt / token', retry: 'permanent' },
  7104: { meaning: 'invalid App Store shared secret', retry: 'fatal' },
  7105: { meaning: 'invalid payment mode or intro price missing', retry: 'permanent' },
  7106: { meaning: 'Google receipt without product_id', retry: 'permanent' },
  7107: { meaning: 'invalid Play Store credentials', retry: 'fatal' },
  7110: { meaning: 'internal server error', retry: 'transient' },
  7220: { meaning: 'empty app_user_id', retry: 'permanent' },
  7224: { meaning: 'invalid auth token', retry: 'fatal' },
  7225: { meaning: 'invalid API key', retry: 'fatal' },
  7226: { meaning: 'bad request', retry: 'permanent' },
  7229: { meaning: 'Play Store quota exceeded', retry: 'transient' },
  7231: { meaning: 'Play Store generic error', retry: 'transient' },
  7255: { meaning: 'could not create alias', retry: 'permanent' },
  7256: { meaning: 'invalid app_user_id', retry: 'permanent' },
  7629: { meaning: 'subscriber attributes are being updated', retry: 'transient' },
  7636: { meaning: 'more than 100 Apple receipts for one subscriber', retry: 'permanent' },
  7638: { meaning: 'request already in progress (same user)', retry: 'transient' },
  7712: { meaning: 'purchased product missing in Apple receipt', retry: 'permanent' },
  7852: { meaning: 'purchase belongs to another user', retry: 'permanent' },
});

export function describeCode(code: number): ErrorCodeInfo | undefined {
  return Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code] : undefined;
}

/** HTTP statuses retried regardless of body (5xx too, including 529). */
export const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([408, 423, 425, 429]);
const FATAL_STATUSES: ReadonlySet<number> = new Set([401, 403]);

const CODE_USER_BUSY = 7638;
/** RevenueCat's "the token is being processed": a retry after a few seconds is right (not the rate limit). */
export const STATUS_IN_PROCESS = 529;
/** The least wait before trying a 529's token again, when the answer names none. */
export const IN_PROCESS_WAIT_MS = 3000;

/**
 * What to fix for each fatal condition (the run pauses and prints this). `{for}` names the key's rows when known
 * (` for android rows (goog_ab…, REVENUECAT_API_KEY_ANDROID)`), `{var}` the variable to set.
 */
const FATAL_ADVICE: Record<number, string> = {
  7104: 'RevenueCat rejected the App Store shared secret{for} ({ctx}): set a valid App-Specific Shared Secret / In-App Purchase key for the app in the RevenueCat dashboard',
  7107: 'RevenueCat rejected the Play Store credentials{for} ({ctx}): upload valid Google Play service-account credentials for the app in the RevenueCat dashboard',
  7224: "RevenueCat rejected the auth token{for} ({ctx}): set {var} to the app's public SDK key",
  7225: "RevenueCat rejected the API key{for} ({ctx}): set {var} to the app's public SDK key",
  401: "RevenueCat rejected the API key{for} ({ctx}): set {var} to the app's public SDK key",
  403: 'RevenueCat refused access{for} ({ctx}): check that {var} belongs to this project and app and is allowed to post receipts',
};

function fatalCause(status: number, code: number | undefined): FatalCause {
  if (code === 7104 || code === 7107) return 'store_credentials';
  if (code === 7224 || code === 7225 || status === 401) return 'key';
  return 'access';
}

const MESSAGE_LIMIT = 300;

/**
 * Keeps messages safe to log: drops anything shaped like a RevenueCat key (`appl_…`, `sk_…`), a bearer
 * token, a JWS, or a long base64 run (receipts, purchase tokens), and bounds the length.
 */
export function sanitizeMessage(text: string): string {
  const cleaned = text
    .replace(/\bBearer\s+\S+/gi, 'Bearer [redacted]')
    .replace(/\b(?:appl|goog|amzn|strp|mac|rcb|roku|pdl|sk|atk)_[A-Za-z0-9_-]{6,}/g, '[redacted]')
    .replace(/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g, '[redacted]')
    .replace(/[A-Za-z0-9+/_=.-]{40,}/g, (run) => (looksLikeToken(run) ? '[redacted]' : run))
    .replace(/\s+/g, ' ')
    .trim();
  return cleaned.length > MESSAGE_LIMIT ? `${cleaned.slice(0, MESSAGE_LIMIT - 1)}…` : cleaned;
}

/** A long run that mixes digits and both letter cases (base64 receipt, purchase token), or anything of 64+ chars. */
function looksLikeToken(run: string): boolean {
  return run.length >= 64 || (/[0-9]/.test(run) && /[A-Z]/.test(run) && /[a-z]/.test(run));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bodyCode(body: unknown): number | undefined {
  if (!isRecord(body)) return undefined;
  const c = body.code;
  if (typeof c === 'number' && Number.isInteger(c)) return c;
  if (typeof c === 'string' && /^\d+$/.test(c.trim())) return Number(c);
  return undefined;
}

/** A string or number as text; anything else (absent, an object) as `fallback`. */
function scalarText(v: unknown, fallback: string): string {
  return typeof v === 'string' || typeof v === 'number' ? String(v) : fallback;
}

function bodyMessage(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  const m = body.message;
  if (typeof m !== 'string' || m.trim() === '') return undefined;
  const attributeErrors = Array.isArray(body.attribute_errors)
    ? body.attribute_errors
        .filter(isRecord)
        .map((e) => `${scalarText(e.key_name, '?')}: ${scalarText(e.message, '')}`)
        .join('; ')
    : '';
  return attributeErrors === '' ? m : `${m} (${attributeErrors})`;
}

function statusClass(status: number): RetryClass {
  if (FATAL_STATUSES.has(status)) return 'fatal';
  if (TRANSIENT_STATUSES.has(status) || (status >= 500 && status <= 599)) return 'transient';
  return 'permanent';
}

const NETWORK_DESCRIPTIONS = {
  timeout: 'request timed out',
  reset: 'connection reset',
  refused: 'connection refused',
  other: 'network error',
} as const;

/** `key`: which key sent the request, named in a fatal answer's message (default: REVENUECAT_API_KEY, unnamed). */
export function classify(result: ApiResult, key?: KeyDescription): Classification {
  if (result.kind === 'network') {
    const message = sanitizeMessage(result.message) || NETWORK_DESCRIPTIONS[result.error];
    return { kind: 'transient', reason: result.error, message, rateLimited: false, userBusy: false };
  }

  const { status, body } = result;
  if (status >= 200 && status <= 299) {
    const subscriber = isRecord(body) ? body.subscriber : undefined;
    if (isSubscriber(subscriber)) return { kind: 'success', status, subscriber };
    return {
      kind: 'permanent',
      status,
      reason: 'malformed_response',
      message: `RevenueCat answered ${status} without a valid subscriber object`,
    };
  }

  const code = bodyCode(body);
  const known = code === undefined ? undefined : describeCode(code);
  const retry: RetryClass = known?.retry ?? statusClass(status);
  const reason = code !== undefined ? `rc_${code}` : `http_${status}`;
  const rcMessage = bodyMessage(body);
  const fallback = known ? known.meaning : `HTTP ${status}`;
  const message = sanitizeMessage(rcMessage ?? fallback) || fallback;
  const codeField = code === undefined ? {} : { code };

  if (retry === 'fatal') {
    const ctx = code === undefined ? `${status}` : `${status}, code ${code}`;
    const advice = (code !== undefined ? FATAL_ADVICE[code] : undefined) ?? FATAL_ADVICE[status] ?? FATAL_ADVICE[401]!;
    const said = rcMessage === undefined ? '' : `. RevenueCat said: ${message}`;
    const named = advice
      .replace('{ctx}', ctx)
      .replace('{for}', key ? ` for ${key.rows} rows (${key.label}, ${key.variable})` : '')
      .replace('{var}', key?.variable ?? 'REVENUECAT_API_KEY');
    return { kind: 'fatal', status, ...codeField, reason, message: named + said, cause: fatalCause(status, code) };
  }

  if (retry === 'transient' && result.headers.isRetryable === false) {
    // RevenueCat's SDKs give up on an answer marked Is-Retryable: false; so does the row, at once, with its reason.
    return { kind: 'permanent', status, ...codeField, reason, message: `${message} (Is-Retryable: false: not tried again)` };
  }

  if (retry === 'transient') {
    const userBusy = code === CODE_USER_BUSY || status === 423;
    const rateLimited = status === 429 && code !== CODE_USER_BUSY;
    const inProcess = status === STATUS_IN_PROCESS && !userBusy;
    // The body's backoff_ms first; a wait the client already capped (retryAfterNote) as it was capped.
    const asked = result.headers.retryAfterNote !== undefined ? result.headers.retryAfterMs : (bodyBackoffMs(body) ?? result.headers.retryAfterMs);
    const retryAfterMs = inProcess ? Math.max(asked ?? 0, IN_PROCESS_WAIT_MS) : asked;
    return {
      kind: 'transient',
      status,
      ...codeField,
      reason,
      message,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      rateLimited,
      userBusy,
      ...(inProcess ? { inProcess } : {}),
    };
  }

  return { kind: 'permanent', status, ...codeField, reason, message };
}
