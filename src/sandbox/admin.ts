// The /_sandbox/* routes: no auth, never counted in stats. Inspection (stats, knobs, subscribers, receipt
// counts, the rate limit in force, the keys), live changes (knobs, a limit schedule, revoking a key) and the
// state changes a real project sees after an import (deleting, refunding, expiring, transferring).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KeyState } from './apiKeys.js';
import { CODES } from './codes.js';
import { readBody, writeResponse } from './http.js';
import { SandboxOptionsError, type ResolvedSandboxOptions } from './options.js';
import type { RateLimitState, RateLimitStep } from './rateSchedule.js';
import type { ReceiptPostCount, SandboxStats } from './stats.js';
import type { PurchasePatch, SandboxEnvironment } from './store.js';
import { isPlainObject } from './validate.js';
import type { SubscriberJson } from './view.js';

/** What the admin routes need of the app (SandboxApp implements it). */
export interface AdminTarget {
  snapshot(): SandboxStats;
  reset(): void;
  currentOptions(): Omit<ResolvedSandboxOptions, 'now'>;
  configure(patch: unknown): void;
  receiptPostCount(appUserId: string, fetchToken: string): { posts: number; successes: number };
  receiptPostCounts(): ReceiptPostCount[];
  peekSubscriber(appUserId: string): SubscriberJson | undefined;
  deleteSubscriber(appUserId: string): boolean;
  removePurchase(appUserId: string, productId: string): boolean;
  updatePurchase(appUserId: string, productId: string, patch: PurchasePatch): 'ok' | 'no_such_subscriber' | 'no_such_product' | 'not_a_subscription';
  transferSubscriber(appUserId: string, originalAppUserId: string): boolean;
  rateLimitState(): RateLimitState;
  setRateLimitSchedule(schedule: RateLimitStep[] | string): void;
  keys(): KeyState[];
  setRevoked(target: { key: string } | { platform: string }, revoked: boolean): string[];
}

type Answer = { status: number; body: unknown };

const ENVIRONMENTS = new Set<string>(['production', 'sandbox']);
const bad = (message: string, extra?: Record<string, unknown>): Answer => ({ status: 400, body: { code: CODES.badRequest, message, ...extra } });
const missing = (message: string): Answer => ({ status: 404, body: { code: CODES.notFound, message } });

export class AdminRoutes {
  constructor(private readonly app: AdminTarget) {}

  async handle(req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<void> {
    const parsed = await readBody(req);
    const answer = this.answer(method, url, parsed);
    writeResponse(res, answer, {});
  }

  private answer(method: string, url: URL, parsed: Awaited<ReturnType<typeof readBody>>): Answer {
    const path = url.pathname;
    const ok = (body: unknown): Answer => ({ status: 200, body });
    // Only the routes that read a body refuse a malformed one.
    const malformed = !parsed.ok && !parsed.empty ? bad(`Body is not valid JSON: ${parsed.reason}`) : undefined;
    const body: unknown = parsed.ok ? parsed.value : undefined;

    if (method === 'GET' && path === '/_sandbox/stats') return ok(this.app.snapshot());
    if (method === 'POST' && path === '/_sandbox/reset') {
      this.app.reset();
      return ok({ ok: true });
    }
    if (path === '/_sandbox/config' && method === 'GET') return ok({ options: this.app.currentOptions() });
    if (path === '/_sandbox/config' && method === 'POST') {
      if (malformed) return malformed;
      return this.configuring(
        () => this.app.configure(body ?? {}),
        () => ok({ options: this.app.currentOptions() }),
      );
    }
    if (method === 'GET' && path === '/_sandbox/rate-limit') return ok(this.app.rateLimitState());
    if (path === '/_sandbox/rate-limit/schedule' && (method === 'POST' || method === 'PUT')) {
      // {schedule: [...] | "0:100,40:50"}, or the array / text itself.
      if (malformed) return malformed;
      const schedule = isPlainObject(body) ? body.schedule : body;
      if (schedule === undefined) return bad('send {"schedule": [{"afterSeconds": 0, "perSecond": 100}, …]} or {"schedule": "0:100,40:50"}.');
      return this.configuring(
        () => this.app.setRateLimitSchedule(schedule as RateLimitStep[] | string),
        () => ok(this.app.rateLimitState()),
      );
    }
    if (path === '/_sandbox/rate-limit/schedule' && method === 'DELETE') {
      this.app.setRateLimitSchedule([]);
      return ok(this.app.rateLimitState());
    }
    if (method === 'GET' && path === '/_sandbox/keys') return ok({ keys: this.app.keys() });
    const keyAction = /^\/_sandbox\/keys\/(revoke|restore)$/.exec(path);
    if (method === 'POST' && keyAction?.[1]) return malformed ?? this.revoke(body, keyAction[1] === 'revoke');
    if (method === 'GET' && path === '/_sandbox/receipt-posts') {
      const appUserId = url.searchParams.get('app_user_id');
      const fetchToken = url.searchParams.get('fetch_token');
      if (appUserId !== null && fetchToken !== null) {
        return ok({ app_user_id: appUserId, fetch_token: fetchToken, ...this.app.receiptPostCount(appUserId, fetchToken) });
      }
      return ok({ receipts: this.app.receiptPostCounts() });
    }
    const mutation = this.mutation(method, path, isPlainObject(body) ? body : {});
    if (mutation) return malformed && method !== 'DELETE' ? malformed : mutation;
    const peek = /^\/_sandbox\/subscribers\/([^/]+)$/.exec(path);
    if (method === 'GET' && peek?.[1] !== undefined) {
      const id = decodeSegment(peek[1]);
      if (id === undefined) return bad('app_user_id is not valid URL encoding.');
      const subscriber = this.app.peekSubscriber(id);
      return subscriber ? ok({ subscriber }) : missing(`No subscriber ${JSON.stringify(id)} in the sandbox.`);
    }
    return missing(`Not found: ${method} ${path}.`);
  }

  /** Runs a knob change; a SandboxOptionsError becomes 400 with its issues. */
  private configuring(change: () => void, then: () => Answer): Answer {
    try {
      change();
    } catch (error) {
      if (error instanceof SandboxOptionsError) return bad(error.message, { issues: error.issues });
      throw error;
    }
    return then();
  }

  /** POST /_sandbox/keys/revoke|restore {key} or {platform}: 404 when it names no configured key. */
  private revoke(body: unknown, revoked: boolean): Answer {
    const target = isPlainObject(body) ? body : {};
    let applied: string[];
    if (typeof target.key === 'string' && target.key !== '') applied = this.app.setRevoked({ key: target.key }, revoked);
    else if (typeof target.platform === 'string' && target.platform !== '') applied = this.app.setRevoked({ platform: target.platform }, revoked);
    else return bad('send {"key": "<API key>"} or {"platform": "<X-Platform value>"}.');
    if (applied.length === 0) return missing('No configured API key matches.');
    return { status: 200, body: { [revoked ? 'revoked' : 'restored']: applied, keys: this.app.keys() } };
  }

  /**
   * DELETE /_sandbox/subscribers/{id}; DELETE /_sandbox/subscribers/{id}/products/{product_id};
   * PATCH /_sandbox/subscribers/{id}/products/{product_id} {expires_at_ms?, environment?};
   * POST /_sandbox/subscribers/{id}/transfer {original_app_user_id}. Undefined when the path is none of these.
   */
  private mutation(method: string, path: string, body: Record<string, unknown>): Answer | undefined {
    const m = /^\/_sandbox\/subscribers\/([^/]+)(?:\/(transfer|products\/([^/]+)))?$/.exec(path);
    if (!m?.[1]) return undefined;
    const id = decodeSegment(m[1]);
    const productId = m[3] === undefined ? undefined : decodeSegment(m[3]);
    if (id === undefined || (m[3] !== undefined && productId === undefined)) return bad('path is not valid URL encoding.');
    const noSubscriber = (): Answer => missing(`No subscriber ${JSON.stringify(id)} in the sandbox.`);
    const subscriber = (): Answer => ({ status: 200, body: { subscriber: this.app.peekSubscriber(id) } });

    if (m[2] === undefined && method === 'DELETE') {
      return this.app.deleteSubscriber(id) ? { status: 200, body: { deleted: true, app_user_id: id } } : noSubscriber();
    }
    if (m[2] === 'transfer' && method === 'POST') {
      const to = body.original_app_user_id;
      if (typeof to !== 'string' || to.trim() === '') return bad('original_app_user_id (a non-empty string) is required.');
      return this.app.transferSubscriber(id, to) ? subscriber() : noSubscriber();
    }
    if (productId !== undefined && method === 'DELETE') {
      return this.app.removePurchase(id, productId) ? subscriber() : missing(`No purchase of ${JSON.stringify(productId)} for ${JSON.stringify(id)}.`);
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
      const result = this.app.updatePurchase(id, productId, patch);
      if (result === 'ok') return subscriber();
      if (result === 'not_a_subscription') return bad(`${JSON.stringify(productId)} is a one-time purchase: it has no expiry to move.`);
      return result === 'no_such_subscriber' ? noSubscriber() : missing(`No purchase of ${JSON.stringify(productId)} for ${JSON.stringify(id)}.`);
    }
    return undefined;
  }
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
