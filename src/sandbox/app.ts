// Request handling: routing and the per-request pipeline, in RevenueCat's order:
// auth → injected fault → rate limit → X-Platform and body validation → per-user lock → (latency) → token.
// Latency is applied once, right before answering, so a request holding the per-user lock holds it for its
// whole processing time, latency included — which is what makes overlap detection meaningful.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Platform } from '../revenuecat/fields.js';
import { CODES } from './codes.js';
import { FaultPlanner, type FaultKind } from './faults.js';
import { header, readBody, writeResponse } from './http.js';
import {
  SandboxOptionsError,
  parseSandboxOptions,
  publicOptions,
  type ResolvedSandboxOptions,
  type SandboxOptions,
} from './options.js';
import { SlidingWindowRateLimiter } from './rateLimiter.js';
import { apiError, badRequest, codeOf, withHeaders, type ApiResponse } from './responses.js';
import { Sleeper } from './sleeper.js';
import { StatsRecorder, type ReceiptPostCount, type SandboxStats } from './stats.js';
import { SubscriberStore, type PurchasePatch, type SandboxEnvironment } from './store.js';
import { FlakyTokens, outcomeFor, readDirective } from './tokens.js';
import { UserLocks } from './userLocks.js';
import { V2Routes, isV2Path } from './v2.js';
import { checkAppUserId, checkPlatformHeader, isPlainObject, validateReceipt, type ValidReceipt } from './validate.js';
import { envelope, renderSubscriber, type SubscriberJson } from './view.js';

export const ROUTE_RECEIPTS = 'POST /v1/receipts';
export const ROUTE_SUBSCRIBER = 'GET /v1/subscribers/{app_user_id}';
export const ROUTE_UNKNOWN = 'unknown';

export const DEFAULT_PRODUCT_ID = 'sandbox.monthly';
const DAY_MS = 86_400_000;
const EXPIRED_PURCHASE_MS = Date.UTC(2023, 0, 1);
const EXPIRED_EXPIRES_MS = Date.UTC(2023, 1, 1);

const STORE_BY_PLATFORM: Record<Platform, string> = {
  ios: 'app_store',
  macos: 'mac_app_store',
  uikitformac: 'mac_app_store',
  android: 'play_store',
  amazon: 'amazon',
  stripe: 'stripe',
  roku: 'roku',
  paddle: 'paddle',
};

export class SandboxApp {
  private options: ResolvedSandboxOptions;
  private readonly stats = new StatsRecorder();
  private readonly store = new SubscriberStore();
  private readonly limiter = new SlidingWindowRateLimiter();
  private readonly locks = new UserLocks();
  private readonly flaky = new FlakyTokens();
  private readonly sleeper = new Sleeper();
  private readonly faults: FaultPlanner;
  private readonly v2: V2Routes;

  constructor(options: ResolvedSandboxOptions) {
    this.options = options;
    this.faults = new FaultPlanner(options.seed);
    this.v2 = new V2Routes({
      options: () => this.options,
      store: this.store,
      stats: this.stats,
      faults: this.faults,
      sleeper: this.sleeper,
      delay: () => this.delay(),
    });
  }

  currentOptions(): Omit<ResolvedSandboxOptions, 'now'> {
    return publicOptions(this.options);
  }

  /** Live knob changes. Port and host belong to the listening socket and cannot change. */
  configure(patch: Partial<SandboxOptions> | unknown): void {
    const parsed = parseSandboxOptions(patch);
    const fixed = (['port', 'host'] as const).filter((k) => parsed[k] !== undefined);
    if (fixed.length > 0) {
      throw new SandboxOptionsError(
        `${fixed.join(' and ')} cannot be changed on a running sandbox`,
        fixed.map((path) => ({ path, message: 'cannot be changed on a running sandbox' })),
      );
    }
    this.options = { ...this.options, ...parsed };
    if (parsed.seed !== undefined) this.faults.reseed(parsed.seed);
  }

  /** Back to a fresh start with the current knobs (the fault sequence restarts from the seed too). */
  reset(): void {
    this.store.clear();
    this.stats.reset();
    this.limiter.clear();
    this.v2.clear();
    this.flaky.clear();
    this.faults.reseed(this.options.seed);
  }

  snapshot(): SandboxStats {
    return this.stats.snapshot({ inFlight: this.locks.inFlight, subscribers: this.store.size });
  }

  receiptPostCount(appUserId: string, fetchToken: string): { posts: number; successes: number } {
    return this.stats.receiptPostCount(appUserId, fetchToken);
  }

  receiptPostCounts(): ReceiptPostCount[] {
    return this.stats.receiptPostCounts();
  }

  /** The subscriber as a secret key would see it, without creating it. */
  peekSubscriber(appUserId: string): SubscriberJson | undefined {
    const subscriber = this.store.peek(appUserId);
    return subscriber ? renderSubscriber(subscriber, { nowMs: this.options.now(), includeAttributes: true }) : undefined;
  }

  // State changes a real project sees over time (a refund, a lapse, a transfer, a deleted customer), for
  // tests of reconciliation. Admin only: never counted in stats, and they do not move last_seen.

  /** Deletes a subscriber and its aliases (like v1 DELETE /subscribers/{id}). False when there was none. */
  deleteSubscriber(appUserId: string): boolean {
    return this.store.delete(appUserId);
  }

  /** Removes every purchase of `productId` from the subscriber (a refund or revocation). */
  removePurchase(appUserId: string, productId: string): boolean {
    const subscriber = this.store.peek(appUserId);
    return subscriber ? this.store.removeProduct(subscriber, productId) : false;
  }

  /** Moves a subscription's expiry (the past = expired) and/or sets a product's environment. */
  updatePurchase(appUserId: string, productId: string, patch: PurchasePatch): 'ok' | 'no_such_subscriber' | 'no_such_product' | 'not_a_subscription' {
    const subscriber = this.store.peek(appUserId);
    return subscriber ? this.store.patchProduct(subscriber, productId, patch) : 'no_such_subscriber';
  }

  /** The subscriber becomes an alias of `originalAppUserId` (as after a transfer / restore to another user). */
  transferSubscriber(appUserId: string, originalAppUserId: string): boolean {
    const subscriber = this.store.peek(appUserId);
    if (!subscriber) return false;
    this.store.alias(subscriber, originalAppUserId);
    return true;
  }

  /** Ends every pending wait so handlers finish at once; server.ts destroys the sockets. */
  shutdown(): void {
    this.sleeper.cancelAll();
  }

  handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      await this.route(req, res);
    } catch (error) {
      // A client that vanished mid-body lands here too; writeResponse is a no-op then.
      writeResponse(res, apiError(500, CODES.internalError, `Internal sandbox error: ${(error as Error).message}`), {});
    }
  };

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (path === '/_sandbox' || path.startsWith('/_sandbox/')) return this.admin(req, res, method, url);
    if (isV2Path(path)) return this.v2.handle(req, res, method, url);

    if (method === 'POST' && path === '/v1/receipts') {
      this.stats.request(ROUTE_RECEIPTS);
      return this.postReceipt(req, res);
    }
    const subscriberPath = /^\/v1\/subscribers\/([^/]+)$/.exec(path);
    if (method === 'GET' && subscriberPath?.[1] !== undefined) {
      this.stats.request(ROUTE_SUBSCRIBER);
      return this.getSubscriber(req, res, subscriberPath[1]);
    }
    this.stats.request(ROUTE_UNKNOWN);
    req.resume();
    this.send(res, apiError(404, CODES.notFound, `Not found: ${method} ${path}.`));
  }

  private async postReceipt(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = await readBody(req);
    // Counted on arrival, whatever happens next: these say what the client sent, not what was accepted.
    const body = parsed.ok && isPlainObject(parsed.value) ? parsed.value : undefined;
    if (body) {
      if (body.create_events !== false || body.should_update_last_seen_fields !== false) this.stats.flagNotFalse();
      if (typeof body.app_user_id === 'string' && typeof body.fetch_token === 'string') {
        this.stats.receiptPost(body.app_user_id, body.fetch_token);
      }
    }

    const gate = await this.gate(req, res);
    if (!gate) return;

    const validation = validateReceipt(header(req, 'x-platform'), parsed);
    if (!validation.ok) return this.reply(res, validation.response);
    const receipt = validation.receipt;

    const ticket = this.locks.enter(receipt.appUserId);
    this.stats.userConcurrency(ticket.concurrent);
    try {
      if (!ticket.acquired) {
        this.stats.overlap();
        await this.reply(res, withHeaders(apiError(429, CODES.requestInProgress, 'request already in progress'), { 'Retry-After': '1' }));
        return;
      }
      await this.delay();
      const response = this.processReceipt(receipt, gate.key);
      this.send(res, response);
      if (response.status >= 200 && response.status < 300) this.stats.receiptSuccess(receipt.appUserId, receipt.fetchToken);
    } finally {
      // After the answer is queued, in the same tick: a client retrying on receipt cannot beat the release.
      ticket.release();
    }
  }

  private processReceipt(receipt: ValidReceipt, apiKey: string): ApiResponse {
    const directive = readDirective(receipt.fetchToken);
    this.stats.directive(directive.label);
    const tag = { 'X-Sandbox-Directive': directive.label };
    const prior = directive.name === 'flaky' ? this.flaky.attempt(receipt.fetchToken) : 0;
    const outcome = outcomeFor(directive, prior);
    if (outcome.kind === 'error') return withHeaders(apiError(outcome.status, outcome.code, outcome.message), tag);

    const now = this.options.now();
    const { subscriber } = this.store.getOrCreate(receipt.appUserId, now);
    const purchase = {
      productId: receipt.productId ?? DEFAULT_PRODUCT_ID,
      fetchToken: receipt.fetchToken,
      store: STORE_BY_PLATFORM[receipt.platform],
      purchaseDateMs: now - DAY_MS,
    };
    switch (outcome.grant) {
      case 'subscription':
        this.store.recordSubscription(subscriber, purchase, now + 30 * DAY_MS);
        break;
      case 'transfer':
        this.store.alias(subscriber, `orig_${receipt.appUserId}`);
        this.store.recordSubscription(subscriber, purchase, now + 30 * DAY_MS);
        break;
      case 'expired':
        this.store.recordSubscription(subscriber, { ...purchase, purchaseDateMs: EXPIRED_PURCHASE_MS }, EXPIRED_EXPIRES_MS);
        break;
      case 'lifetime':
        this.store.recordNonSubscription(subscriber, purchase);
        break;
      case 'nothing':
        break;
    }
    this.store.mergeAttributes(subscriber, receipt.attributes);
    if (receipt.updateLastSeen) subscriber.lastSeenMs = now;
    return {
      status: 200,
      headers: tag,
      body: envelope(now, renderSubscriber(subscriber, { nowMs: now, includeAttributes: isSecretKey(apiKey) })),
    };
  }

  private async getSubscriber(req: IncomingMessage, res: ServerResponse, rawId: string): Promise<void> {
    req.resume();
    const gate = await this.gate(req, res);
    if (!gate) return;

    // X-Platform is optional here; when present it must be valid, and it is what makes last_seen move.
    const platformHeader = header(req, 'x-platform');
    if (platformHeader !== undefined) {
      const check = checkPlatformHeader(platformHeader);
      if (!check.ok) return this.reply(res, check.response);
    }
    let appUserId: string;
    try {
      appUserId = decodeURIComponent(rawId);
    } catch {
      return this.reply(res, badRequest('app_user_id is not valid URL encoding.'));
    }
    const problem = checkAppUserId(appUserId);
    if (problem) return this.reply(res, problem);

    await this.delay();
    const now = this.options.now();
    const { subscriber, created } = this.store.getOrCreate(appUserId, now);
    if (!created && platformHeader !== undefined) subscriber.lastSeenMs = now;
    this.send(res, {
      status: created ? 201 : 200,
      body: envelope(now, renderSubscriber(subscriber, { nowMs: now, includeAttributes: isSecretKey(gate.key) })),
    });
  }

  /** Auth, injected faults, rate limit. Returns the API key, or undefined when the request was answered (or dropped). */
  private async gate(req: IncomingMessage, res: ServerResponse): Promise<{ key: string } | undefined> {
    const auth = this.authenticate(req);
    if ('response' in auth) {
      await this.reply(res, auth.response);
      return undefined;
    }
    const fault = this.faults.decide(this.options);
    if (fault !== 'none') {
      this.stats.fault(fault);
      await this.injectFault(fault, req, res);
      return undefined;
    }
    const perSecond = this.options.rateLimitPerSecond;
    if (perSecond > 0) {
      const decision = this.limiter.take(perSecond);
      if (!decision.allowed) {
        this.stats.rateLimit();
        await this.reply(
          res,
          withHeaders(apiError(429, CODES.rateLimited, `Rate limit exceeded (${perSecond} requests per second). Retry after ${decision.retryAfterSeconds} s.`), {
            'Retry-After': String(decision.retryAfterSeconds),
          }),
        );
        return undefined;
      }
    }
    return { key: auth.key };
  }

  private authenticate(req: IncomingMessage): { key: string } | { response: ApiResponse } {
    const raw = header(req, 'authorization');
    if (raw === undefined || raw.trim() === '') {
      return { response: apiError(401, CODES.invalidAuthToken, 'Missing Authorization header: send "Authorization: Bearer <API key>".') };
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(raw);
    if (!match?.[1]) return { response: apiError(401, CODES.invalidAuthToken, 'Invalid authorization token: expected "Bearer <API key>".') };
    if (!this.options.apiKeys.includes(match[1])) {
      return { response: apiError(401, CODES.invalidApiKey, 'Invalid API key. Check the key in use is a current public SDK key (or secret key) of this project.') };
    }
    return { key: match[1] };
  }

  private async injectFault(fault: Exclude<FaultKind, 'none'>, req: IncomingMessage, res: ServerResponse): Promise<void> {
    switch (fault) {
      case '5xx':
        return this.reply(res, serverError(this.faults.pick5xx()));
      case 'reset':
        await this.delay();
        req.socket.destroy();
        return;
      case 'hang':
        // Ends early if the client gives up (or on close()), so abandoned hangs do not pile up timers.
        await this.sleeper.sleep(this.options.hangMs, req.socket);
        req.socket.destroy();
        return;
    }
  }

  private async reply(res: ServerResponse, response: ApiResponse): Promise<void> {
    await this.delay();
    this.send(res, response);
  }

  private send(res: ServerResponse, response: ApiResponse): void {
    writeResponse(res, response, this.rateHeaders());
    this.stats.response(response.status, codeOf(response));
  }

  private rateHeaders(): Record<string, string> {
    const perSecond = this.options.rateLimitPerSecond;
    if (perSecond <= 0 || !this.options.rateLimitHeaders) return {};
    return {
      'RevenueCat-Rate-Limit-Current-Limit': String(perSecond * 60),
      'RevenueCat-Rate-Limit-Current-Usage': String(this.limiter.usagePerMinute()),
    };
  }

  private delay(): Promise<void> {
    const ms = this.options.latencyMs + this.faults.jitter(this.options.latencyJitterMs);
    return this.sleeper.sleep(ms);
  }

  /**
   * DELETE /_sandbox/subscribers/{id}; DELETE /_sandbox/subscribers/{id}/products/{product_id};
   * PATCH /_sandbox/subscribers/{id}/products/{product_id} {expires_at_ms?, environment?};
   * POST /_sandbox/subscribers/{id}/transfer {original_app_user_id}. Undefined when the path is none of these.
   */
  private adminMutation(method: string, path: string, parsed: Awaited<ReturnType<typeof readBody>>): { status: number; body: unknown } | undefined {
    const m = /^\/_sandbox\/subscribers\/([^/]+)(?:\/(transfer|products\/([^/]+)))?$/.exec(path);
    if (!m?.[1]) return undefined;
    const bad = (message: string) => ({ status: 400, body: { code: CODES.badRequest, message } });
    const missing = (what: string) => ({ status: 404, body: { code: CODES.notFound, message: what } });
    const id = decodeSegment(m[1]);
    const productId = m[3] === undefined ? undefined : decodeSegment(m[3]);
    if (id === undefined || (m[3] !== undefined && productId === undefined)) return bad('path is not valid URL encoding.');
    const body = parsed.ok && isPlainObject(parsed.value) ? parsed.value : {};
    if (!parsed.ok && !parsed.empty) return bad(`Body is not valid JSON: ${parsed.reason}`);

    if (m[2] === undefined && method === 'DELETE') {
      return this.deleteSubscriber(id) ? { status: 200, body: { deleted: true, app_user_id: id } } : missing(`No subscriber ${JSON.stringify(id)} in the sandbox.`);
    }
    if (m[2] === 'transfer' && method === 'POST') {
      const to = body.original_app_user_id;
      if (typeof to !== 'string' || to.trim() === '') return bad('original_app_user_id (a non-empty string) is required.');
      return this.transferSubscriber(id, to) ? { status: 200, body: { subscriber: this.peekSubscriber(id) } } : missing(`No subscriber ${JSON.stringify(id)} in the sandbox.`);
    }
    if (productId !== undefined && method === 'DELETE') {
      return this.removePurchase(id, productId) ? { status: 200, body: { subscriber: this.peekSubscriber(id) } } : missing(`No purchase of ${JSON.stringify(productId)} for ${JSON.stringify(id)}.`);
    }
    if (productId !== undefined && method === 'PATCH') {
      const patch: PurchasePatch = {};
      if (body.expires_at_ms !== undefined) {
        if (typeof body.expires_at_ms !== 'number' || !Number.isFinite(body.expires_at_ms)) return bad('expires_at_ms must be epoch milliseconds.');
        patch.expiresDateMs = body.expires_at_ms;
      }
      if (body.environment !== undefined) {
        if (typeof body.environment !== 'string' || !ENVIRONMENTS.has(body.environment)) return bad('environment must be "production" or "sandbox".');
        patch.environment = body.environment as SandboxEnvironment;
      }
      if (Object.keys(patch).length === 0) return bad('send expires_at_ms and/or environment.');
      const result = this.updatePurchase(id, productId, patch);
      if (result === 'ok') return { status: 200, body: { subscriber: this.peekSubscriber(id) } };
      if (result === 'not_a_subscription') return bad(`${JSON.stringify(productId)} is a one-time purchase: it has no expiry to move.`);
      return missing(result === 'no_such_subscriber' ? `No subscriber ${JSON.stringify(id)} in the sandbox.` : `No purchase of ${JSON.stringify(productId)} for ${JSON.stringify(id)}.`);
    }
    return undefined;
  }

  private async admin(req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<void> {
    const parsed = await readBody(req);
    const path = url.pathname;
    const send = (status: number, body: unknown): void => void writeResponse(res, { status, body }, {});

    if (method === 'GET' && path === '/_sandbox/stats') return send(200, this.snapshot());
    if (method === 'POST' && path === '/_sandbox/reset') {
      this.reset();
      return send(200, { ok: true });
    }
    if (path === '/_sandbox/config' && method === 'GET') return send(200, { options: this.currentOptions() });
    if (path === '/_sandbox/config' && method === 'POST') {
      if (!parsed.ok && !parsed.empty) return send(400, { code: CODES.badRequest, message: `Body is not valid JSON: ${parsed.reason}` });
      try {
        this.configure(parsed.ok ? parsed.value : {});
      } catch (error) {
        if (error instanceof SandboxOptionsError) return send(400, { code: CODES.badRequest, message: error.message, issues: error.issues });
        throw error;
      }
      return send(200, { options: this.currentOptions() });
    }
    if (method === 'GET' && path === '/_sandbox/receipt-posts') {
      const appUserId = url.searchParams.get('app_user_id');
      const fetchToken = url.searchParams.get('fetch_token');
      if (appUserId !== null && fetchToken !== null) {
        return send(200, { app_user_id: appUserId, fetch_token: fetchToken, ...this.receiptPostCount(appUserId, fetchToken) });
      }
      return send(200, { receipts: this.receiptPostCounts() });
    }
    const mutation = this.adminMutation(method, path, parsed);
    if (mutation) return send(mutation.status, mutation.body);
    const peek = /^\/_sandbox\/subscribers\/([^/]+)$/.exec(path);
    if (method === 'GET' && peek?.[1] !== undefined) {
      let id: string;
      try {
        id = decodeURIComponent(peek[1]);
      } catch {
        return send(400, { code: CODES.badRequest, message: 'app_user_id is not valid URL encoding.' });
      }
      const subscriber = this.peekSubscriber(id);
      if (!subscriber) return send(404, { code: CODES.notFound, message: `No subscriber ${JSON.stringify(id)} in the sandbox.` });
      return send(200, { subscriber });
    }
    return send(404, { code: CODES.notFound, message: `Not found: ${method} ${path}.` });
  }
}

const ENVIRONMENTS = new Set<string>(['production', 'sandbox']);

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function isSecretKey(key: string): boolean {
  return key.startsWith('sk_');
}

/** The 5xx mix: RevenueCat's own 500 is JSON; 502/503 come from proxies in front of it and are not. */
function serverError(status: 500 | 502 | 503): ApiResponse {
  if (status === 500) return apiError(500, CODES.internalError, 'Internal server error.');
  const title = status === 502 ? '502 Bad Gateway' : '503 Service Temporarily Unavailable';
  return { status, raw: { contentType: 'text/html', text: `<html><head><title>${title}</title></head><body><h1>${title}</h1></body></html>` } };
}
