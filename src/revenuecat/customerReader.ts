// Reads one user's current state for `verify`, as one normalized CustomerState (./customerState.ts) whichever
// API answered. Facts: RevenueCat's REST API v1 reference (GET /v1/subscribers)
// and API v2 reference (customers, active entitlements, subscriptions, purchases).
//
// v2 (the default) reads without side effects: GET /v2/projects/{project_id}/customers/{id} (404 = the user
// does not exist), its active entitlements and its subscriptions and one-time purchases, following next_page.
// v2 names entitlements and products by the project's ids (`entl…`, `prod…`), while the rows and v1 use
// lookup keys and store identifiers, so the reader also loads the project's catalog once (GET
// …/entitlements and …/products, Project Configuration domain) to translate them. The key is a v2 secret key
// with read permission on customers, subscriptions, purchases, entitlements and products.
//
// v1 (`api: 'v1'`, a fallback for keys without v2 access) reads GET /v1/subscribers/{id} WITHOUT X-Platform.
// Beware: v1 GET is get-or-create. It CREATES a subscriber that did not exist (answering 201, which the reader
// reports as `exists: false, created_by_read: true`), and it would update last_seen if X-Platform were sent.
// Reading a user the import never reached leaves an empty customer behind in the project: that is why v2 is
// the default.
//
// Pace: a token bucket per reader (per process) at `ratePerMinute`, by default 480, the Customer
// Information domain's limit, shared by every v2 customer endpoint. The answers'
// RevenueCat-Rate-Limit-Current-Limit caps it when lower. A 429 pauses the whole reader for `backoff_ms`
// (else Retry-After, else 1 s), lowers the pace by 30% (at most once a second) and the request is tried
// again; each answer that is not a 429 climbs back by 2% of the cap. 5xx, 423, timeouts and connection
// errors are retried with exponential backoff. Each request is tried at most `maxTries` times.
// `read()` never throws for HTTP or network problems, and the key never appears in anything it returns.

import type { Pool } from 'undici';
import { header, parseBody, openApiPool, requestWithDeadline, DEFAULT_USER_AGENT, type NetworkErrorKind } from './client.js';
import { normalizeV1, type CustomerState } from './customerState.js';
import { backoffDelay, bodyBackoffMs, parseRetryAfter } from './retryAfter.js';
import { isSubscriber } from './subscriber.js';

export interface CustomerReaderOptions {
  /** e.g. `https://api.revenuecat.com`; may carry a path prefix. */
  baseUrl: string;
  /** v2: a secret key (`sk_…`) with read permissions; v1: any key GET /v1/subscribers accepts. Never logged. */
  secretKey: string;
  /** Required for v2. */
  projectId?: string;
  api: 'v2' | 'v1';
  /** Deadline of one HTTP request. */
  timeoutMs: number;
  /** Keep-alive connections (default 8). */
  connections?: number;
  /** Requests per minute for this reader (default in config: 480, the v2 Customer Information domain). */
  ratePerMinute: number;
  /** Token bucket size: requests that may start back to back (default 1: evenly spaced). */
  burst?: number;
  /** Tries per HTTP request, 429s included (default 5). */
  maxTries?: number;
  /** Backoff between retries of 5xx / network failures: base and cap (default 500 ms, 30 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  userAgent?: string;
}

export type ReadResult = { ok: true; state: CustomerState } | { ok: false; status?: number; reason: string; message: string };

/** Failures that will repeat for every user: a caller should stop rather than read on. */
export function isFatalReadFailure(result: ReadResult): boolean {
  if (result.ok) return false;
  return result.status === 401 || result.status === 403 || result.reason === 'project_not_found' || result.reason === 'closed';
}

const REDACTED = '[redacted]';
const DEFAULT_MAX_TRIES = 5;
const DEFAULT_429_WAIT_MS = 1_000;
const RETRYABLE_STATUSES = new Set([408, 423, 425, 500, 502, 503, 504, 529]);
/** Subscription statuses that give access when `gives_access` is absent. */
const ACCESS_STATUSES = new Set(['active', 'trialing', 'in_grace_period']);
/** Refresh the catalog on an unknown id at most this often. */
const CATALOG_REFRESH_MS = 60_000;
/** A runaway next_page chain is an API bug, not a customer: stop there. */
const MAX_PAGES = 100;

type Reply = { kind: 'response'; status: number; body: unknown } | { kind: 'network'; error: NetworkErrorKind; message: string };

/** Thrown inside a v2 read when the customer answers 404 part-way (deleted between two calls). */
class CustomerGone extends Error {}

class ReadError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Paces request starts at `perMinute`, `capacity` at most back to back. Waiters are served in order.
 * `pause(ms)` (after a 429) stops every start until then and empties the bucket, so the reader resumes at
 * the steady rate rather than with a burst.
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private blockedUntil = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private perMinute: number,
    private readonly capacity: number,
  ) {
    this.tokens = capacity;
  }

  get rate(): number {
    return this.perMinute;
  }

  setRate(perMinute: number): void {
    this.refill();
    this.perMinute = perMinute;
  }

  pause(ms: number): void {
    this.blockedUntil = Math.max(this.blockedUntil, performance.now() + ms);
    this.tokens = 0;
  }

  take(): Promise<void> {
    const turn = this.queue.then(() => this.wait());
    this.queue = turn;
    return turn;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.perMinute) / 60_000);
    this.last = now;
  }

  private async wait(): Promise<void> {
    for (;;) {
      const now = performance.now();
      if (now < this.blockedUntil) {
        await sleep(this.blockedUntil - now);
        this.last = Math.max(this.last, this.blockedUntil);
        continue;
      }
      this.refill();
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.max(1, Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute)));
    }
  }
}

/** v2 id → lookup key (entitlements) and → store identifier (products). */
interface Catalog {
  entitlements: Map<string, string>;
  products: Map<string, string>;
}

export class CustomerReader {
  readonly #pool: Pool;
  readonly #prefix: string;
  readonly #key: string;
  readonly #api: 'v2' | 'v1';
  readonly #projectPath: string;
  readonly #timeoutMs: number;
  readonly #maxTries: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #userAgent: string;
  readonly #configuredRate: number;
  /** The configured rate, or the API's limit when lower. */
  #ceiling: number;
  #lastDecrease = 0;
  readonly #bucket: TokenBucket;
  #catalog: Promise<Catalog> | undefined;
  #catalogStartedAt = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(o: CustomerReaderOptions) {
    if (typeof o.secretKey !== 'string' || o.secretKey.trim() === '') throw new Error('RevenueCat secret key is empty');
    if (/[\0-\x1f\x7f\s]/.test(o.secretKey)) throw new Error('RevenueCat secret key contains whitespace or control characters');
    if (o.api !== 'v2' && o.api !== 'v1') throw new Error(`api must be "v2" or "v1" (got ${String(o.api)})`);
    if (o.api === 'v2') {
      if (!o.secretKey.startsWith('sk_')) throw new Error('v2 reads need a secret API key (sk_…): public SDK keys are refused by API v2');
      if (!o.projectId || !/^[A-Za-z0-9_-]+$/.test(o.projectId)) throw new Error('v2 reads need the project id (REVENUECAT_PROJECT_ID), e.g. proj1ab2c3d4');
    }
    if (!Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0) throw new Error(`timeoutMs must be a positive number (got ${String(o.timeoutMs)})`);
    if (!Number.isFinite(o.ratePerMinute) || o.ratePerMinute <= 0) throw new Error(`ratePerMinute must be a positive number (got ${String(o.ratePerMinute)})`);
    const connections = o.connections ?? 8;
    if (!Number.isInteger(connections) || connections < 1) throw new Error(`connections must be a positive integer (got ${String(connections)})`);
    const burst = o.burst ?? 1;
    if (!Number.isFinite(burst) || burst < 1) throw new Error(`burst must be at least 1 (got ${String(burst)})`);
    this.#key = o.secretKey;

    const { pool, prefix } = openApiPool(o.baseUrl, { connections, timeoutMs: o.timeoutMs }, (t) => this.#redact(t));
    this.#pool = pool;
    this.#prefix = prefix;
    this.#api = o.api;
    this.#projectPath = `/v2/projects/${encodeURIComponent(o.projectId ?? '')}`;
    this.#timeoutMs = o.timeoutMs;
    this.#maxTries = Math.max(1, o.maxTries ?? DEFAULT_MAX_TRIES);
    this.#backoffBaseMs = o.backoffBaseMs ?? 500;
    this.#backoffMaxMs = o.backoffMaxMs ?? 30_000;
    this.#userAgent = o.userAgent ?? DEFAULT_USER_AGENT;
    this.#configuredRate = o.ratePerMinute;
    this.#ceiling = o.ratePerMinute;
    this.#bucket = new TokenBucket(o.ratePerMinute, burst);
  }

  /** The pace in force (requests per minute): the configured rate, or the API's lower limit once seen. */
  get ratePerMinute(): number {
    return this.#bucket.rate;
  }

  async read(appUserId: string): Promise<ReadResult> {
    if (this.#closed) return { ok: false, reason: 'closed', message: 'the reader is closed' };
    if (typeof appUserId !== 'string' || appUserId === '') return { ok: false, reason: 'invalid_app_user_id', message: 'app_user_id is empty' };
    try {
      const state = this.#api === 'v2' ? await this.#readV2(appUserId) : await this.#readV1(appUserId);
      return { ok: true, state };
    } catch (err) {
      if (err instanceof ReadError) {
        return { ok: false, ...(err.status !== undefined ? { status: err.status } : {}), reason: err.reason, message: this.#redact(err.message) };
      }
      return { ok: false, reason: 'internal', message: this.#redact(err instanceof Error ? err.message : String(err)) };
    }
  }

  /** Waits for requests in flight, then closes the connections. Later reads fail with reason `closed`. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#pool.close().then(
      () => undefined,
      () => undefined,
    );
    return this.#closing;
  }

  // ---- v2 ----

  async #readV2(appUserId: string): Promise<CustomerState> {
    const catalog = await this.#loadCatalog(false);
    const base = `${this.#projectPath}/customers/${encodeURIComponent(appUserId)}`;
    const customer = await this.#get(base, 'customer_information');
    if (customer.status === 404) return this.#missing(customer);
    const body = expectOk(customer);
    if (!isRecord(body) || typeof body.id !== 'string') throw new ReadError('invalid_response', 'the customer answer is not a v2 customer object', customer.status);

    let entitlementItems: unknown[];
    let subscriptionItems: unknown[];
    let purchaseItems: unknown[];
    try {
      // The customer object embeds the first page of its active entitlements: a separate GET only when there are more.
      const embedded = body.active_entitlements;
      if (isList(embedded)) entitlementItems = [...embedded.items, ...(await this.#rest(embedded.next_page ?? null))];
      else entitlementItems = await this.#list(`${base}/active_entitlements`);
      subscriptionItems = await this.#list(`${base}/subscriptions`);
      purchaseItems = await this.#list(`${base}/purchases`);
    } catch (err) {
      // Deleted between the calls: it is missing now.
      if (err instanceof CustomerGone) return { exists: false, active_entitlements: [], products: [] };
      throw err;
    }

    const names = await this.#names(catalog, entitlementItems, [...subscriptionItems, ...purchaseItems]);
    const active_entitlements = entitlementItems.filter(isRecord).map((e) => ({
      id: names.entitlement(String(e.entitlement_id)),
      expires_at: msToIso(e.expires_at),
    }));
    const products: CustomerState['products'] = [];
    for (const s of subscriptionItems.filter(isRecord)) {
      const expires = msToIso(s.current_period_ends_at ?? s.ends_at);
      const active = typeof s.gives_access === 'boolean' ? s.gives_access : ACCESS_STATUSES.has(String(s.status));
      products.push({ id: names.product(String(s.product_id)), ...environmentOf(s.environment), active, expires_at: expires });
    }
    for (const p of purchaseItems.filter(isRecord)) {
      products.push({ id: names.product(String(p.product_id)), ...environmentOf(p.environment), active: p.status === undefined || p.status === 'owned', expires_at: null });
    }
    return { exists: true, original_app_user_id: body.id, active_entitlements, products };
  }

  #missing(reply: { status: number; body: unknown }): CustomerState {
    const type = isRecord(reply.body) ? reply.body.type : undefined;
    // A v2 404 is resource_missing; anything else (an HTML page from a proxy, a route that does not exist)
    // must not pass for "the user is gone".
    if (type !== undefined && type !== 'resource_missing') throw new ReadError(typeof type === 'string' ? type : 'http_404', messageOf(reply.body, 'HTTP 404'), 404);
    if (type === undefined) throw new ReadError('http_404', `HTTP 404 without a v2 error body (is the base URL RevenueCat's API?): ${messageOf(reply.body, 'no body')}`, 404);
    return { exists: false, active_entitlements: [], products: [] };
  }

  /** Every item of a list, following next_page; throws CustomerGone on a resource_missing 404. */
  async #list(path: string): Promise<unknown[]> {
    const first = await this.#get(path, 'customer_information');
    if (first.status === 404) {
      this.#missing(first);
      throw new CustomerGone();
    }
    const body = expectOk(first);
    if (!isList(body)) throw new ReadError('invalid_response', `${describePath(path)} is not a v2 list`, first.status);
    return [...body.items, ...(await this.#rest(body.next_page ?? null))];
  }

  async #rest(nextPage: string | null): Promise<unknown[]> {
    const items: unknown[] = [];
    let next = nextPage;
    for (let pages = 0; next !== null; pages++) {
      if (pages >= MAX_PAGES) throw new ReadError('invalid_response', `more than ${MAX_PAGES} pages in one list`);
      const reply = await this.#get(this.#pagePath(next), 'customer_information');
      if (reply.status === 404) {
        this.#missing(reply);
        throw new CustomerGone();
      }
      const body = expectOk(reply);
      if (!isList(body)) throw new ReadError('invalid_response', 'a next_page answer is not a v2 list', reply.status);
      items.push(...body.items);
      next = body.next_page ?? null;
    }
    return items;
  }

  /** next_page is a path (`/v2/…?starting_after=…`) or an absolute URL; either is sent to our origin and prefix. */
  #pagePath(next: string): string {
    let path = next;
    if (/^https?:\/\//i.test(next)) {
      const u = new URL(next);
      path = `${u.pathname}${u.search}`;
    }
    if (this.#prefix !== '' && path.startsWith(this.#prefix + '/')) path = path.slice(this.#prefix.length);
    return path.startsWith('/') ? path : `/${path}`;
  }

  /** Translators from v2 ids to lookup keys / store identifiers, refreshing the catalog once for an unknown id. */
  async #names(catalog: Catalog, entitlements: unknown[], purchases: unknown[]): Promise<{ entitlement(id: string): string; product(id: string): string }> {
    const unknown =
      entitlements.some((e) => isRecord(e) && !catalog.entitlements.has(String(e.entitlement_id))) ||
      purchases.some((p) => isRecord(p) && !catalog.products.has(String(p.product_id)));
    let current = catalog;
    // Refreshed at most once a minute; reads meanwhile take whatever load is current (a refresh in progress included).
    if (unknown) current = await this.#loadCatalog(Date.now() - this.#catalogStartedAt > CATALOG_REFRESH_MS);
    // An id the catalog does not know stays as it is: it will not match, and the mismatch shows the raw id.
    return {
      entitlement: (id) => current.entitlements.get(id) ?? id,
      product: (id) => current.products.get(id) ?? id,
    };
  }

  #loadCatalog(refresh: boolean): Promise<Catalog> {
    if (!this.#catalog || refresh) {
      this.#catalogStartedAt = Date.now();
      const loading = (async (): Promise<Catalog> => {
        const entitlements = new Map<string, string>();
        for (const e of await this.#catalogList('entitlements')) {
          if (isRecord(e) && typeof e.id === 'string' && typeof e.lookup_key === 'string') entitlements.set(e.id, e.lookup_key);
        }
        const products = new Map<string, string>();
        for (const p of await this.#catalogList('products')) {
          if (isRecord(p) && typeof p.id === 'string' && typeof p.store_identifier === 'string') products.set(p.id, p.store_identifier);
        }
        return { entitlements, products };
      })();
      // A failed load is not kept: the next read tries again.
      loading.catch(() => {
        if (this.#catalog === loading) this.#catalog = undefined;
      });
      this.#catalog = loading;
    }
    return this.#catalog;
  }

  async #catalogList(what: 'entitlements' | 'products'): Promise<unknown[]> {
    const items: unknown[] = [];
    let next: string | null = `${this.#projectPath}/${what}`;
    for (let pages = 0; next !== null; pages++) {
      if (pages >= MAX_PAGES) throw new ReadError('invalid_response', `more than ${MAX_PAGES} pages of ${what}`);
      const reply = await this.#get(pages === 0 ? next : this.#pagePath(next), 'project_configuration');
      if (reply.status === 404) {
        throw new ReadError('project_not_found', `project not found (or not visible to this key): check REVENUECAT_PROJECT_ID (${messageOf(reply.body, 'HTTP 404')})`, 404);
      }
      if (reply.status === 403) {
        throw new ReadError(
          'authorization_error',
          `reading the project's ${what} was refused: the v2 key needs project_configuration:${what}:read (${messageOf(reply.body, 'HTTP 403')})`,
          403,
        );
      }
      const body = expectOk(reply);
      if (!isList(body)) throw new ReadError('invalid_response', `the ${what} answer is not a v2 list`, reply.status);
      items.push(...body.items);
      next = body.next_page ?? null;
    }
    return items;
  }

  // ---- v1 ----

  async #readV1(appUserId: string): Promise<CustomerState> {
    // No X-Platform: with it, the GET would also move last_seen. Without it, it still creates a missing user.
    const reply = await this.#get(`/v1/subscribers/${encodeURIComponent(appUserId)}`, 'customer_information');
    const body = expectOk(reply);
    const subscriber = isRecord(body) ? body.subscriber : undefined;
    if (!isSubscriber(subscriber)) throw new ReadError('invalid_response', 'the answer carries no valid subscriber', reply.status);
    if (reply.status === 201) {
      return { exists: false, created_by_read: true, original_app_user_id: subscriber.original_app_user_id, active_entitlements: [], products: [] };
    }
    return { exists: true, ...normalizeV1(subscriber) };
  }

  // ---- HTTP ----

  /** One GET with pacing and retries; answers 2xx and final 4xx, throws ReadError for everything else. */
  async #get(path: string, domain: 'customer_information' | 'project_configuration'): Promise<{ status: number; body: unknown }> {
    let last: Reply | undefined;
    for (let attempt = 1; attempt <= this.#maxTries; attempt++) {
      if (this.#closed) throw new ReadError('closed', 'the reader is closed');
      // The catalog is another domain (a few requests per process): it does not spend customer tokens.
      if (domain === 'customer_information') await this.#bucket.take();
      const reply = await this.#send(path, domain);
      last = reply;
      if (reply.kind === 'response') {
        if (reply.status === 429) {
          const wait = bodyBackoffMs(reply.body) ?? reply.retryAfterMs ?? DEFAULT_429_WAIT_MS;
          if (domain === 'customer_information') {
            this.#slowDown();
            this.#bucket.pause(wait); // the next take() waits it out
          } else {
            await sleep(wait);
          }
          continue;
        }
        if (domain === 'customer_information') this.#speedUp();
        const retryable = RETRYABLE_STATUSES.has(reply.status) || (reply.status >= 500 && isRecord(reply.body) && reply.body.retryable !== false);
        if (!retryable) return { status: reply.status, body: reply.body };
      }
      if (attempt < this.#maxTries) await sleep(this.#backoff(attempt));
    }
    if (last?.kind === 'network') throw new ReadError(last.error === 'other' ? 'network' : last.error, `${last.message} (after ${this.#maxTries} tries)`);
    const status = last?.status ?? 0;
    const body = last?.kind === 'response' ? last.body : undefined;
    const type = isRecord(body) && typeof body.type === 'string' ? body.type : undefined;
    throw new ReadError(status === 429 ? 'rate_limited' : (type ?? `http_${status}`), `${messageOf(body, `HTTP ${status}`)} (after ${this.#maxTries} tries)`, status);
  }

  #backoff(attempt: number): number {
    return backoffDelay(attempt, { baseMs: this.#backoffBaseMs, maxMs: this.#backoffMaxMs });
  }

  async #send(path: string, domain: 'customer_information' | 'project_configuration'): Promise<Reply & { retryAfterMs?: number }> {
    const sent = await requestWithDeadline(
      this.#pool,
      { method: 'GET', path: this.#prefix + path, headers: { authorization: `Bearer ${this.#key}`, accept: 'application/json', 'user-agent': this.#userAgent } },
      this.#timeoutMs,
    );
    if (!sent.ok) return { kind: 'network', error: sent.error, message: this.#redact(sent.message) };
    const body = parseBody(this.#redact(sent.text));
    // Limits are per domain: only the customer domain's limit paces the customer reads.
    if (domain === 'customer_information') this.#followLimit(header(sent.headers, 'revenuecat-rate-limit-current-limit'));
    const retryAfterMs = parseRetryAfter(header(sent.headers, 'retry-after'));
    return { kind: 'response', status: sent.status, body, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }

  /** The API's per-minute limit, when lower than ours, caps our pace (never above the configured rate). */
  #followLimit(value: string | undefined): void {
    if (value === undefined || !/^\s*\d+\s*$/.test(value)) return;
    const limit = Number(value);
    if (limit <= 0) return;
    this.#ceiling = Math.min(this.#configuredRate, limit);
    if (this.#bucket.rate > this.#ceiling) this.#bucket.setRate(this.#ceiling);
  }

  #slowDown(): void {
    const now = performance.now();
    if (now - this.#lastDecrease < 1_000) return; // one burst of 429s is one signal
    this.#lastDecrease = now;
    this.#bucket.setRate(Math.max(1, this.#bucket.rate * 0.7));
  }

  #speedUp(): void {
    if (this.#bucket.rate < this.#ceiling) this.#bucket.setRate(Math.min(this.#ceiling, this.#bucket.rate + this.#ceiling / 50));
  }

  #redact(text: string): string {
    return text.split(this.#key).join(REDACTED);
  }
}

function expectOk(reply: { status: number; body: unknown }): unknown {
  if (reply.status >= 200 && reply.status < 300) return reply.body;
  const type = isRecord(reply.body) && typeof reply.body.type === 'string' ? reply.body.type : undefined;
  throw new ReadError(type ?? `http_${reply.status}`, messageOf(reply.body, `HTTP ${reply.status}`), reply.status);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A v2 list; a list without next_page is a last page. */
function isList(v: unknown): v is { items: unknown[]; next_page?: string | null } {
  return isRecord(v) && Array.isArray(v.items) && (v.next_page === null || v.next_page === undefined || typeof v.next_page === 'string');
}

function messageOf(body: unknown, fallback: string): string {
  if (isRecord(body) && typeof body.message === 'string' && body.message !== '') return body.message;
  if (isRecord(body) && typeof body.raw === 'string' && body.raw.trim() !== '') return `${fallback}: ${body.raw.slice(0, 100)}`;
  return fallback;
}

function msToIso(v: unknown): string | null {
  if (typeof v === 'number' && Number.isFinite(v)) return new Date(v).toISOString();
  if (typeof v === 'string' && !Number.isNaN(Date.parse(v))) return new Date(Date.parse(v)).toISOString();
  return null;
}

function environmentOf(v: unknown): { environment?: 'production' | 'sandbox' } {
  return v === 'production' || v === 'sandbox' ? { environment: v } : {};
}

function describePath(path: string): string {
  return path.replace(/\/customers\/[^/]+/, '/customers/{id}');
}
