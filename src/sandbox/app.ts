// Request handling: routing and the per-request pipeline, in RevenueCat's order:
// auth → injected fault → rate limit → X-Platform and body validation → per-user lock → (latency) → token.
// Latency is applied once, right before answering, so a request holding the per-user lock holds it for its
// whole processing time, latency included — which is what makes overlap detection meaningful.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AdminRoutes } from './admin.js';
import { AppleAdminRoutes, isAppleAdminPath } from './appleAdmin.js';
import { loadOrGenerateAppleKey } from './appleKey.js';
import { APPLE_CATALOGUE_KNOBS, APPLE_FIXED_KNOBS } from './appleOptions.js';
import { ApplePurchases, type TransferRecord } from './applePurchases.js';
import type { AppleTokenContents } from './appleContents.js';
import { readAppleToken } from './appleToken.js';
import type { AppleTransactionRecord } from './appleTransactions.js';
import { AppStoreServerApi, isAppleApiPath, type AppleApiState } from './appStoreServerApi.js';
import { UNKNOWN_KEY_LABEL, checkKey, keyLabel, knownKeys, keyScope, scopeNames, type KeyState } from './apiKeys.js';
import { monotonicEpochMs } from './clock.js';
import { CODES } from './codes.js';
import { SUBSCRIBER_STORE, isPlatform, storeColumn } from './contract/platforms.js';
import { FaultPlanner, type FaultKind } from './faults.js';
import { header, readBody, writeResponse } from './http.js';
import { SandboxOptionsError, parseSandboxOptions, publicOptions, type ResolvedSandboxOptions } from './options.js';
import { RateLimiter, type RateDecision, type RateRule } from './rateLimiter.js';
import { limitsAt, nextStep, perMinuteEquivalent, type RateLimitState, type RateLimitStep, type V1Limits } from './rateSchedule.js';
import { apiError, badRequest, codeOf, withHeaders, type ApiResponse } from './responses.js';
import { Sleeper } from './sleeper.js';
import { StatsRecorder, type ReceiptPostCount, type SandboxStats } from './stats.js';
import { SubscriberStore, type PurchasePatch } from './store.js';
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

/** Who a request authenticated as, for the answer's bookkeeping. */
interface Caller {
  key: string;
  label: string;
}

export class SandboxApp {
  private options: ResolvedSandboxOptions;
  private readonly stats = new StatsRecorder();
  private readonly store = new SubscriberStore();
  private readonly limiter = new RateLimiter();
  private readonly locks = new UserLocks();
  private readonly flaky = new FlakyTokens();
  private readonly sleeper = new Sleeper();
  private readonly clock = monotonicEpochMs;
  private scheduleStartedAt = this.clock();
  private readonly faults: FaultPlanner;
  private readonly v2: V2Routes;
  private readonly admin: AdminRoutes;
  private readonly applePurchases = new ApplePurchases(this.store);
  private readonly appleApi: AppStoreServerApi;
  private readonly appleAdmin: AppleAdminRoutes;

  constructor(options: ResolvedSandboxOptions) {
    this.options = options;
    this.faults = new FaultPlanner(options.seed);
    this.appleApi = new AppStoreServerApi(() => this.options, loadOrGenerateAppleKey(options.appleKeyFile, options.appleKeyOut), this.sleeper);
    this.appleAdmin = new AppleAdminRoutes(this);
    this.v2 = new V2Routes({
      options: () => this.options,
      store: this.store,
      stats: this.stats,
      faults: this.faults,
      sleeper: this.sleeper,
      delay: () => this.delay() ?? Promise.resolve(),
    });
    this.admin = new AdminRoutes(this);
  }

  currentOptions(): Omit<ResolvedSandboxOptions, 'now'> {
    return publicOptions(this.options);
  }

  /** Live knob changes. Port and host belong to the listening socket and cannot change. */
  configure(patch: unknown): void {
    const parsed = parseSandboxOptions(patch);
    const fixed = (['port', 'host', ...APPLE_FIXED_KNOBS] as const).filter((k) => parsed[k] !== undefined);
    if (fixed.length > 0) {
      throw new SandboxOptionsError(
        `${fixed.join(' and ')} cannot be changed on a running sandbox`,
        fixed.map((path) => ({ path, message: 'cannot be changed on a running sandbox' })),
      );
    }
    const previous = this.options;
    this.options = { ...this.options, ...parsed };
    if (APPLE_CATALOGUE_KNOBS.some((k) => parsed[k] !== undefined)) {
      try {
        this.appleApi.rebuildCatalogue();
      } catch (error) {
        // An unreadable transactions file leaves every knob as it was.
        this.options = previous;
        throw new SandboxOptionsError((error as Error).message, [{ path: 'appleTransactionsFile', message: (error as Error).message }]);
      }
    }
    if (parsed.seed !== undefined) this.faults.reseed(parsed.seed);
    // A schedule is a script from "now": setting one (even the same) starts its clock again.
    if (parsed.rateLimitSchedule !== undefined) this.scheduleStartedAt = this.clock();
  }

  /** Back to a fresh start with the current knobs (the fault sequence and the schedule restart too). */
  reset(): void {
    this.store.clear();
    this.stats.reset();
    this.limiter.clear();
    this.v2.clear();
    this.flaky.clear();
    this.applePurchases.clear();
    this.appleApi.clear();
    this.faults.reseed(this.options.seed);
    this.scheduleStartedAt = this.clock();
  }

  snapshot(): SandboxStats {
    return this.stats.snapshot({
      inFlight: this.locks.inFlight,
      subscribers: this.store.size,
      apple: { transfers: this.applePurchases.transferCount, appleReceipts: this.applePurchases.stats(), appStoreServerApi: this.appleApi.stats() },
    });
  }

  /** App Store purchases moved between App User IDs since the last reset (GET /_sandbox/transfers). */
  transfers(): TransferRecord[] {
    return this.applePurchases.transfers();
  }

  appleApiState(): AppleApiState {
    return this.appleApi.state();
  }

  appleCredentials(): ReturnType<AppStoreServerApi['credentials']> {
    return this.appleApi.credentials();
  }

  appleTransactions(): AppleTransactionRecord[] {
    return this.appleApi.transactions();
  }

  appleLookups(): Record<string, number> {
    return this.appleApi.lookups();
  }

  receiptPostCount(appUserId: string, fetchToken: string): { posts: number; successes: number } {
    return this.stats.receiptPostCount(appUserId, fetchToken);
  }

  receiptPostCounts(): ReceiptPostCount[] {
    return this.stats.receiptPostCounts();
  }

  /** The v1 limits in force now: the base knobs, then the schedule's steps; none in unlimited mode. */
  currentLimits(): V1Limits {
    if (this.options.unlimited) return { perSecond: 0, perMinute: 0 };
    return limitsAt(this.baseLimits(), this.options.rateLimitSchedule, this.elapsedScheduleSeconds());
  }

  rateLimitState(): RateLimitState {
    const elapsed = this.elapsedScheduleSeconds();
    const next = nextStep(this.options.rateLimitSchedule, elapsed);
    return {
      current: this.currentLimits(),
      base: this.baseLimits(),
      window: this.options.rateLimitWindow,
      unlimited: this.options.unlimited,
      schedule: this.options.rateLimitSchedule.map((step) => ({ ...step })),
      scheduleStartedAtMs: Math.round(this.scheduleStartedAt),
      elapsedSeconds: Math.round(elapsed * 1000) / 1000,
      next: next ? { ...next, inSeconds: Math.round((next.afterSeconds - elapsed) * 1000) / 1000 } : null,
      usagePerMinute: this.limiter.usagePerMinute(),
    };
  }

  /** Replaces the schedule (an empty one removes it) and starts its clock. Throws SandboxOptionsError. */
  setRateLimitSchedule(schedule: RateLimitStep[] | string): void {
    this.configure({ rateLimitSchedule: schedule });
  }

  keys(): KeyState[] {
    return knownKeys(this.options).map((key) => ({
      label: keyLabel(key),
      platforms: scopeNames(keyScope(this.options, key)),
      revoked: this.options.revokedApiKeys.includes(key),
    }));
  }

  /**
   * Revokes (or restores) one key, or every key bound to a platform. Returns the labels of the keys it applied
   * to; none when the sandbox does not know the key or no key is bound to the platform.
   */
  setRevoked(target: { key: string } | { platform: string }, revoked: boolean): string[] {
    const keys =
      'key' in target ? knownKeys(this.options).filter((k) => k === target.key) : isPlatform(target.platform) ? [...(this.options.platformApiKeys[target.platform] ?? [])] : [];
    const set = new Set(this.options.revokedApiKeys);
    for (const key of keys) {
      if (revoked) set.add(key);
      else set.delete(key);
    }
    this.options = { ...this.options, revokedApiKeys: [...set] };
    return keys.map(keyLabel);
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
    if (isAppleAdminPath(path)) return this.appleAdmin.handle(req, res, method, url);
    if (path === '/_sandbox' || path.startsWith('/_sandbox/')) return this.admin.handle(req, res, method, url);
    if (isAppleApiPath(path)) return this.appleApi.handle(req, res, method, url);
    if (isV2Path(path)) return this.v2.handle(req, res, method, url);

    if (method === 'POST' && path === '/v1/receipts') {
      this.stats.request(ROUTE_RECEIPTS);
      this.stats.tick('request', this.currentLimits());
      return this.postReceipt(req, res);
    }
    const subscriberPath = /^\/v1\/subscribers\/([^/]+)$/.exec(path);
    if (method === 'GET' && subscriberPath?.[1] !== undefined) {
      this.stats.request(ROUTE_SUBSCRIBER);
      this.stats.tick('request', this.currentLimits());
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

    const caller = await this.gate(req, res);
    if (!caller) return;

    const validation = validateReceipt(header(req, 'x-platform'), parsed);
    if (!validation.ok) return this.reply(res, validation.response, caller);
    const receipt = validation.receipt;

    const ticket = this.locks.enter(receipt.appUserId);
    this.stats.userConcurrency(ticket.concurrent);
    try {
      if (!ticket.acquired) {
        // Not the rate limit: counted apart (overlaps, never rateLimited) so a client can tell the two.
        this.stats.overlap();
        this.stats.tick('overlap', this.currentLimits());
        const message = this.options.overlapStatus === 529 ? 'operation already in progress' : 'request already in progress';
        await this.reply(res, withHeaders(apiError(this.options.overlapStatus, CODES.requestInProgress, message), { 'Retry-After': '1' }), caller);
        return;
      }
      // No await at all without latency: with the lock taken and released in one go, no other request can
      // interleave, which is what unlimited mode promises (and what makes it cheap).
      const wait = this.delay();
      if (wait) await wait;
      const response = this.processReceipt(receipt, caller.key);
      this.send(res, response, caller);
      if (response.status >= 200 && response.status < 300) {
        this.stats.receiptSuccess(receipt.appUserId, receipt.fetchToken);
        this.stats.tick('succeeded', this.currentLimits());
      }
    } finally {
      // After the answer is queued, in the same tick: a client retrying on receipt cannot beat the release.
      ticket.release();
    }
  }

  private processReceipt(receipt: ValidReceipt, apiKey: string): ApiResponse {
    // App Store tokens are read for what they hold, as RevenueCat does; what cannot be read (a test token, an
    // iOS 6 transaction receipt) keeps the deterministic token scheme.
    if (isAppleStore(receipt.platform)) {
      const apple = readAppleToken(receipt.fetchToken);
      if (apple) return this.processAppleToken(receipt, apiKey, apple);
      this.applePurchases.noteUnread();
    }
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
      store: SUBSCRIBER_STORE[receipt.platform],
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

  private processAppleToken(receipt: ValidReceipt, apiKey: string, contents: AppleTokenContents): ApiResponse {
    const label = contents.kind === 'receipt' ? 'apple_receipt' : 'apple_signed_transaction';
    this.stats.directive(label);
    const tag = { 'X-Sandbox-Directive': label };
    const now = this.options.now();
    const { subscriber, created } = this.store.getOrCreate(receipt.appUserId, now);
    const result = this.applePurchases.grant(subscriber, contents, { store: SUBSCRIBER_STORE[receipt.platform], restoreBehavior: this.options.restoreBehavior, nowMs: now });
    if (!result.ok) {
      // A refused post leaves nothing behind, not even the subscriber it would have created.
      if (created) this.store.delete(receipt.appUserId);
      return withHeaders(result.response, tag);
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
    const caller = await this.gate(req, res);
    if (!caller) return;

    // X-Platform is optional here; when present it must be valid, and it is what makes last_seen move.
    const platformHeader = header(req, 'x-platform');
    if (platformHeader !== undefined) {
      const check = checkPlatformHeader(platformHeader);
      if (!check.ok) return this.reply(res, check.response, caller);
    }
    let appUserId: string;
    try {
      appUserId = decodeURIComponent(rawId);
    } catch {
      return this.reply(res, badRequest('app_user_id is not valid URL encoding.'), caller);
    }
    const problem = checkAppUserId(appUserId);
    if (problem) return this.reply(res, problem, caller);

    const wait = this.delay();
    if (wait) await wait;
    const now = this.options.now();
    const { subscriber, created } = this.store.getOrCreate(appUserId, now);
    if (!created && platformHeader !== undefined) subscriber.lastSeenMs = now;
    this.send(
      res,
      {
        status: created ? 201 : 200,
        body: envelope(now, renderSubscriber(subscriber, { nowMs: now, includeAttributes: isSecretKey(caller.key) })),
      },
      caller,
    );
  }

  /** Auth, injected faults, rate limit. Returns the caller, or undefined when the request was answered (or dropped). */
  private async gate(req: IncomingMessage, res: ServerResponse): Promise<Caller | undefined> {
    const auth = this.authenticate(req);
    if ('response' in auth) {
      await this.reply(res, auth.response, auth.label === undefined ? undefined : { label: auth.label });
      return undefined;
    }
    const caller = auth;
    const fault = this.faults.decide(this.options);
    if (fault !== 'none') {
      this.stats.fault(fault);
      await this.injectFault(fault, req, res, caller);
      return undefined;
    }
    const limits = this.currentLimits();
    // Unlimited mode skips the limiter altogether (nothing recorded): the benchmark measures the client.
    const decision: RateDecision = this.options.unlimited ? { allowed: true, retryAfterSeconds: 0, retryAfterMs: 0 } : this.limiter.take(this.rules(limits));
    if (!decision.allowed) {
      this.stats.rateLimit();
      this.stats.tick('rateLimited', limits);
      const perMinute = decision.refusedBy?.windowMs === 60_000;
      const described = perMinute ? `${limits.perMinute} requests per minute` : `${limits.perSecond} requests per second`;
      const extra = this.options.rateLimitBackoffMs ? { backoff_ms: decision.retryAfterMs } : undefined;
      await this.reply(
        res,
        withHeaders(apiError(429, CODES.rateLimited, `Rate limit exceeded (${described}). Retry after ${decision.retryAfterSeconds} s.`, extra), {
          'Retry-After': String(decision.retryAfterSeconds),
        }),
        caller,
      );
      return undefined;
    }
    this.stats.tick('admitted', limits);
    return caller;
  }

  /** The limiter's rules for the limits in force; none (every request admitted) when there is no limit. */
  private rules(limits: V1Limits): RateRule[] {
    const kind = this.options.rateLimitWindow;
    const rules: RateRule[] = [];
    if (limits.perSecond > 0) rules.push({ limit: limits.perSecond, windowMs: 1_000, kind });
    if (limits.perMinute > 0) rules.push({ limit: limits.perMinute, windowMs: 60_000, kind });
    return rules;
  }

  private authenticate(req: IncomingMessage): Caller | { response: ApiResponse; label?: string } {
    const raw = header(req, 'authorization');
    if (raw === undefined || raw.trim() === '') {
      return { response: apiError(401, CODES.invalidAuthToken, 'Missing Authorization header: send "Authorization: Bearer <API key>".') };
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(raw);
    if (!match?.[1]) return { response: apiError(401, CODES.invalidAuthToken, 'Invalid authorization token: expected "Bearer <API key>".') };
    const key = match[1];
    const check = checkKey(this.options, key, header(req, 'x-platform'));
    const label = check.scope === undefined ? UNKNOWN_KEY_LABEL : keyLabel(key);
    this.stats.keyRequest(label, scopeNames(check.scope));
    if (!check.ok) return { label, response: apiError(401, CODES.invalidApiKey, check.message) };
    return { key, label };
  }

  private async injectFault(fault: Exclude<FaultKind, 'none'>, req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void> {
    switch (fault) {
      case '5xx':
        return this.reply(res, serverError(this.faults.pick5xx()), caller);
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

  private async reply(res: ServerResponse, response: ApiResponse, caller?: Pick<Caller, 'label'>): Promise<void> {
    const wait = this.delay();
    if (wait) await wait;
    this.send(res, response, caller);
  }

  private send(res: ServerResponse, response: ApiResponse, caller?: Pick<Caller, 'label'>): void {
    writeResponse(res, response, this.rateHeaders());
    const code = codeOf(response);
    this.stats.response(response.status, code);
    if (caller) this.stats.keyAnswer(caller.label, response.status, response.status === 429 && code === CODES.rateLimited);
  }

  /** v1 answers announce the limit only when asked to (`rateLimitHeaders: 'all'`): RevenueCat publishes no v1 limit. */
  private rateHeaders(): Record<string, string> {
    if (this.options.rateLimitHeaders !== 'all') return {};
    const perMinute = perMinuteEquivalent(this.currentLimits());
    if (perMinute <= 0) return {};
    return {
      'RevenueCat-Rate-Limit-Current-Limit': String(perMinute),
      'RevenueCat-Rate-Limit-Current-Usage': String(this.limiter.usagePerMinute()),
    };
  }

  /** The latency wait, or undefined when there is none to wait (unlimited mode, or no latency drawn). */
  private delay(): Promise<void> | undefined {
    if (this.options.unlimited) return undefined;
    const ms = this.options.latencyMs + this.faults.jitter(this.options.latencyJitterMs);
    return ms > 0 ? this.sleeper.sleep(ms) : undefined;
  }

  private baseLimits(): V1Limits {
    return { perSecond: this.options.rateLimitPerSecond, perMinute: this.options.rateLimitPerMinute };
  }

  private elapsedScheduleSeconds(): number {
    return Math.max(0, (this.clock() - this.scheduleStartedAt) / 1000);
  }
}

function isAppleStore(platform: ValidReceipt['platform']): boolean {
  return storeColumn(platform) === 'apple';
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
