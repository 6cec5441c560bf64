// HTTP client for the two RevenueCat v1 endpoints the pipeline uses: POST /v1/receipts and
// GET /v1/subscribers/{app_user_id}. Facts: RevenueCat's REST API v1 reference.
//
// Contract: the request methods never throw for HTTP or network problems; every outcome is an ApiResult
// that `classify()` (./classify.ts) turns into success / transient / permanent / fatal. The API keys (one, or one
// per platform from a KeyRing) are kept in private fields and scrubbed from every message and body this module
// returns.

import { Pool } from 'undici';
import { PLATFORMS, type Platform, type ReceiptBody } from './fields.js';
import { DEFAULT_KEY_VARIABLE, KeyRing } from './keyRing.js';
import { bodyBackoffMs, DEFAULT_MAX_RETRY_AFTER_MS, describeRetryAfter, readRetryAfter } from './retryAfter.js';

export interface RevenueCatClientOptions {
  /** e.g. `https://api.revenuecat.com`; may end in '/' and may carry a path prefix (`http://proxy/rc/`). */
  baseUrl: string;
  /** The app's public SDK key (`appl_`, `goog_`…) or a secret key (`sk_`), for every platform. Never logged, never returned. */
  apiKey?: string;
  /** Instead of `apiKey`: each platform's key (keyRing.ts); a request for a platform without one throws. */
  keys?: KeyRing;
  /** Deadline for one whole request (connect, headers and body); a hung request ends as a 'timeout' result. */
  timeoutMs: number;
  /** Keep-alive connections kept to the API origin (default 10). */
  connections?: number;
  userAgent?: string;
  /** The longest wait any answer may ask for (Retry-After, backoff_ms); longer ones are capped (retryAfter.ts). */
  maxRetryAfterMs?: number;
}

export interface ResponseMeta {
  /** From a body `backoff_ms` when present, else from `Retry-After` (seconds, decimal allowed, or an HTTP date; see retryAfter.ts). */
  retryAfterMs?: number;
  /** Set when the wait asked was not taken as sent (milliseconds, or capped): the one warning line, naming the value. */
  retryAfterNote?: string;
  /** `Is-Retryable` (RevenueCat's SDKs honour it): false = trying again will not help. */
  isRetryable?: boolean;
  /** `RevenueCat-Rate-Limit-Current-Limit` (requests per minute). */
  rateLimitPerMinute?: number;
  /** `RevenueCat-Rate-Limit-Current-Usage`. */
  rateLimitUsage?: number;
}

export type NetworkErrorKind = 'timeout' | 'reset' | 'refused' | 'other';

export type ApiResult =
  | { kind: 'response'; status: number; body: unknown; headers: ResponseMeta; durationMs: number }
  | { kind: 'network'; error: NetworkErrorKind; message: string; durationMs: number };

export const DEFAULT_USER_AGENT = 'rc-migrate/0.1.0';
const DEFAULT_CONNECTIONS = 10;
/** How much of a non-JSON body (an HTML error page, say) is kept. */
const RAW_BODY_LIMIT = 200;

const REDACTED = '[redacted]';

export class RevenueCatClient {
  readonly #pool: Pool;
  readonly #prefix: string;
  readonly #keys: KeyRing;
  /** the key of requests without a platform (GET /v1/subscribers): REVENUECAT_API_KEY when given, else the first key */
  readonly #anyKey: string;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #maxRetryAfterMs: number;
  #closing: Promise<void> | undefined;

  constructor(opts: RevenueCatClientOptions) {
    const keys = opts.keys ?? singleKey(opts.apiKey);
    const secrets = PLATFORMS.map((p) => keys.secretFor(p)).filter((k): k is string => k !== undefined);
    if (secrets.length === 0) throw new Error('RevenueCat API key is empty');
    for (const secret of secrets) {
      if (secret.trim() === '') throw new Error('RevenueCat API key is empty');
      // A key with control characters would break (or inject) headers; say so without echoing it.
      if (/[\0-\x1f\x7f\s]/.test(secret)) throw new Error('RevenueCat API key contains whitespace or control characters');
    }
    if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) throw new Error(`timeoutMs must be a positive number (got ${String(opts.timeoutMs)})`);
    const connections = opts.connections ?? DEFAULT_CONNECTIONS;
    if (!Number.isInteger(connections) || connections < 1) throw new Error(`connections must be a positive integer (got ${String(connections)})`);
    this.#keys = keys;
    const fallback = keys.keys().find((k) => k.variable === DEFAULT_KEY_VARIABLE)?.platforms[0];
    this.#anyKey = keys.secretFor(fallback ?? (keys.platforms()[0] as Platform)) as string;

    const { pool, prefix } = openApiPool(opts.baseUrl, { connections, timeoutMs: opts.timeoutMs }, (t) => this.#redact(t));
    this.#pool = pool;
    this.#prefix = prefix;
    this.#timeoutMs = opts.timeoutMs;
    this.#userAgent = opts.userAgent ?? DEFAULT_USER_AGENT;
    this.#maxRetryAfterMs = opts.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  }

  /** POST /v1/receipts. Always sends `create_events: false` and `should_update_last_seen_fields: false`. */
  postReceipt(platform: Platform, body: ReceiptBody): Promise<ApiResult> {
    const payload = { ...body, create_events: false, should_update_last_seen_fields: false };
    return this.#send('POST', '/v1/receipts', platform, JSON.stringify(payload));
  }

  /**
   * GET /v1/subscribers/{app_user_id}. Note: v1 is get-or-create, and updates `last_seen` when X-Platform is
   * sent, so `platform` is optional and best left out for read-only reconciliation.
   */
  getSubscriber(appUserId: string, platform?: Platform): Promise<ApiResult> {
    return this.#send('GET', `/v1/subscribers/${encodeURIComponent(appUserId)}`, platform, undefined);
  }

  /** Waits for in-flight requests, then closes the kept-alive connections. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= this.#pool.close().then(
      () => undefined,
      () => undefined,
    );
    return this.#closing;
  }

  /** Closes the connections at once: requests in flight end as network errors (after a forced shutdown). */
  destroy(): Promise<void> {
    this.#closing ??= this.#pool.destroy().then(
      () => undefined,
      () => undefined,
    );
    return this.#closing;
  }

  async #send(method: 'GET' | 'POST', path: string, platform: Platform | undefined, body: string | undefined): Promise<ApiResult> {
    const apiKey = platform === undefined ? this.#anyKey : this.#keys.secretFor(platform);
    // The processor checks the ring before sending: a row without a key never gets here.
    if (apiKey === undefined) throw new Error(`no API key for ${platform ?? 'this request'}`);
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const headers: Record<string, string> = {
      authorization: `Bearer ${apiKey}`,
      accept: 'application/json',
      'user-agent': this.#userAgent,
    };
    if (platform !== undefined) headers['x-platform'] = platform;
    if (body !== undefined) headers['content-type'] = 'application/json';

    const sent = await requestWithDeadline(this.#pool, { method, path: this.#prefix + path, headers, ...(body !== undefined ? { body } : {}) }, this.#timeoutMs);
    if (!sent.ok) return { kind: 'network', error: sent.error, message: this.#redact(sent.message), durationMs: elapsed() };
    const parsed = parseBody(this.#redact(sent.text));
    return { kind: 'response', status: sent.status, body: parsed, headers: readMeta(sent.headers, parsed, this.#maxRetryAfterMs), durationMs: elapsed() };
  }

  #redact(text: string): string {
    return this.#keys.redact(text, REDACTED);
  }
}

/** One key for every platform (the `apiKey` option); its checks are the constructor's. */
function singleKey(apiKey: string | undefined): KeyRing {
  if (typeof apiKey !== 'string' || apiKey === '') throw new Error('RevenueCat API key is empty');
  return new KeyRing(Object.fromEntries(PLATFORMS.map((p) => [p, { key: apiKey, variable: DEFAULT_KEY_VARIABLE }])));
}

/**
 * A keep-alive connection pool to the API's origin, and the path prefix requests go under (a base URL may carry
 * one, e.g. behind a proxy). undici's own timers back up each request's deadline; both end as 'timeout'.
 */
export function openApiPool(baseUrl: string, opts: { connections: number; timeoutMs: number }, redact: (text: string) => string): { pool: Pool; prefix: string } {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new Error(`invalid RevenueCat base URL: ${redact(String(baseUrl))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`RevenueCat base URL must be http or https (got ${url.protocol})`);
  if (url.search !== '' || url.hash !== '') throw new Error('RevenueCat base URL must not carry a query string or fragment');
  const pool = new Pool(url.origin, {
    connections: opts.connections,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connect: { timeout: opts.timeoutMs },
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
  });
  return { pool, prefix: url.pathname.replace(/\/+$/, '') };
}

export type TimedResult = { ok: true; status: number; headers: RawHeaders; text: string } | { ok: false; error: NetworkErrorKind; message: string };

/**
 * One HTTP request with one deadline for connecting, headers and body together. Never throws: network
 * problems come back as a kind (timeout, reset, refused, other) and a message (which the caller redacts).
 */
export async function requestWithDeadline(
  pool: Pool,
  req: { method: 'GET' | 'POST'; path: string; headers: Record<string, string>; body?: string },
  timeoutMs: number,
): Promise<TimedResult> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`request timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  try {
    const res = await pool.request({ ...req, signal: controller.signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const text = await res.body.text();
    // undici marks the connection idle on the next turn of the event loop; without this yield a caller that
    // sends its next request straight away finds it busy and the pool opens a second socket.
    await new Promise<void>((resolve) => setImmediate(resolve));
    return { ok: true, status: res.statusCode, headers: res.headers, text };
  } catch (err) {
    if (timedOut) return { ok: false, error: 'timeout', message: `request timed out after ${timeoutMs} ms` };
    return { ok: false, error: networkErrorKind(err), message: describeError(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** JSON when it parses, else `{ raw }` with the first RAW_BODY_LIMIT characters (empty body → `{ raw: '' }`). */
export function parseBody(text: string): unknown {
  if (text.trim() !== '') {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // fall through
    }
  }
  return { raw: text.slice(0, RAW_BODY_LIMIT) };
}

export type RawHeaders = Record<string, string | string[] | undefined>;

/** A response header's first value. */
export function header(headers: RawHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function nonNegativeInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(v)) return undefined;
  return Math.round(Number(v));
}

export function readMeta(headers: RawHeaders, body: unknown, maxRetryAfterMs: number = DEFAULT_MAX_RETRY_AFTER_MS): ResponseMeta {
  const meta: ResponseMeta = {};
  const backoff = bodyBackoffMs(body);
  if (backoff !== undefined) {
    meta.retryAfterMs = Math.min(backoff, maxRetryAfterMs);
    if (backoff > maxRetryAfterMs)
      meta.retryAfterNote = `backoff_ms ${backoff} asks for a wait longer than maxRetryAfterMs (${maxRetryAfterMs} ms): waiting ${maxRetryAfterMs} ms instead`;
  } else {
    const retryAfter = readRetryAfter(header(headers, 'retry-after'), Date.now(), maxRetryAfterMs);
    if (retryAfter !== undefined) {
      meta.retryAfterMs = retryAfter.ms;
      const note = describeRetryAfter(retryAfter, maxRetryAfterMs);
      if (note !== undefined) meta.retryAfterNote = note;
    }
  }
  const retryable = header(headers, 'is-retryable')?.trim().toLowerCase();
  if (retryable === 'false' || retryable === 'true') meta.isRetryable = retryable === 'true';
  const limit = nonNegativeInt(header(headers, 'revenuecat-rate-limit-current-limit'));
  if (limit !== undefined) meta.rateLimitPerMinute = limit;
  const usage = nonNegativeInt(header(headers, 'revenuecat-rate-limit-current-usage'));
  if (usage !== undefined) meta.rateLimitUsage = usage;
  return meta;
}

/** Error codes found on the error, its `cause` chain and AggregateError members (happy-eyeballs connects). */
function errorCodes(err: unknown, depth = 0): string[] {
  if (typeof err !== 'object' || err === null || depth > 4) return [];
  const e = err as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown };
  const codes: string[] = [];
  if (typeof e.code === 'string') codes.push(e.code);
  if (typeof e.name === 'string') codes.push(e.name);
  codes.push(...errorCodes(e.cause, depth + 1));
  if (Array.isArray(e.errors)) for (const inner of e.errors) codes.push(...errorCodes(inner, depth + 1));
  return codes;
}

function networkErrorKind(err: unknown): NetworkErrorKind {
  const codes = errorCodes(err);
  const has = (...names: string[]) => names.some((n) => codes.includes(n));
  if (
    has('UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'TimeoutError', 'HeadersTimeoutError', 'BodyTimeoutError', 'ConnectTimeoutError')
  ) {
    return 'timeout';
  }
  if (has('ECONNREFUSED')) return 'refused';
  if (has('ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'ECONNABORTED', 'SocketError')) return 'reset';
  return 'other';
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const cause = (err as { cause?: unknown }).cause;
  let msg = typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  if (msg.trim() === '' && err instanceof AggregateError) msg = err.errors.map((e) => describeError(e)).join('; ');
  if (cause instanceof Error && cause.message !== '' && !msg.includes(cause.message)) msg += ` (${describeError(cause)})`;
  return msg.slice(0, 500);
}
