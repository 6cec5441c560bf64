// The v2 reads: GET /v2/projects/{project_id}/customers/{customer_id}[/active_entitlements|/subscriptions|
// /purchases] (Customer Information domain) and GET /v2/projects/{project_id}/entitlements|products (Project
// Configuration domain). They have no side effects: a missing customer is 404, never created, and last_seen
// never moves. Pipeline: auth (secret key) → project → injected fault → domain rate limit → parameters →
// (latency) → answer. Errors use the v2 body {object:'error', type, message, retryable, doc_url, backoff_ms?}.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { UNKNOWN_KEY_LABEL, checkKey, keyLabel, scopeNames } from './apiKeys.js';
import type { FaultPlanner } from './faults.js';
import { header, writeResponse } from './http.js';
import type { ResolvedSandboxOptions } from './options.js';
import { RateLimiter } from './rateLimiter.js';
import type { ApiResponse } from './responses.js';
import type { Sleeper } from './sleeper.js';
import type { StatsRecorder } from './stats.js';
import type { StoredSubscriber, SubscriberStore } from './store.js';
import { checkAppUserId } from './validate.js';
import { activeEntitlements, customer, entitlementObject, page, productObject, purchases, stripIds, subscriptions, v2Error, type V2ErrorType } from './viewV2.js';

export const ROUTE_V2_CUSTOMER = 'GET /v2/projects/{project_id}/customers/{customer_id}';
export const ROUTE_V2_ACTIVE_ENTITLEMENTS = 'GET /v2/projects/{project_id}/customers/{customer_id}/active_entitlements';
export const ROUTE_V2_SUBSCRIPTIONS = 'GET /v2/projects/{project_id}/customers/{customer_id}/subscriptions';
export const ROUTE_V2_PURCHASES = 'GET /v2/projects/{project_id}/customers/{customer_id}/purchases';
export const ROUTE_V2_ENTITLEMENTS = 'GET /v2/projects/{project_id}/entitlements';
export const ROUTE_V2_PRODUCTS = 'GET /v2/projects/{project_id}/products';

type Domain = 'customer_information' | 'project_configuration';
type CustomerResource = 'customer' | 'active_entitlements' | 'subscriptions' | 'purchases';
type Route =
  | { kind: 'customer'; label: string; projectId: string; customerId: string; resource: CustomerResource }
  | { kind: 'catalog'; label: string; projectId: string; resource: 'entitlements' | 'products' };

const CUSTOMER_ROUTES: Record<string, { resource: CustomerResource; label: string }> = {
  '': { resource: 'customer', label: ROUTE_V2_CUSTOMER },
  active_entitlements: { resource: 'active_entitlements', label: ROUTE_V2_ACTIVE_ENTITLEMENTS },
  subscriptions: { resource: 'subscriptions', label: ROUTE_V2_SUBSCRIPTIONS },
  purchases: { resource: 'purchases', label: ROUTE_V2_PURCHASES },
};

export interface V2Context {
  options(): ResolvedSandboxOptions;
  readonly store: SubscriberStore;
  readonly stats: StatsRecorder;
  readonly faults: FaultPlanner;
  readonly sleeper: Sleeper;
  delay(): Promise<void>;
}

/** Paths this module answers (everything else stays with the v1 router, `/v2/nothing` included). */
export function isV2Path(path: string): boolean {
  return path.startsWith('/v2/projects/');
}

export class V2Routes {
  private readonly limiters: Record<Domain, RateLimiter> = {
    customer_information: new RateLimiter(),
    project_configuration: new RateLimiter(),
  };

  constructor(private readonly ctx: V2Context) {}

  clear(): void {
    this.limiters.customer_information.clear();
    this.limiters.project_configuration.clear();
  }

  async handle(req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<void> {
    req.resume();
    const route = method === 'GET' ? parseRoute(url.pathname) : undefined;
    if (!route) {
      this.ctx.stats.v2Request('unknown');
      return this.reply(res, undefined, error(404, 'resource_missing', `Not found: ${method} ${url.pathname}.`));
    }
    this.ctx.stats.v2Request(route.label);
    const domain: Domain = route.kind === 'customer' ? 'customer_information' : 'project_configuration';
    const options = this.ctx.options();

    const auth = this.authenticate(header(req, 'authorization'));
    const label = auth.label;
    if (auth.response) return this.reply(res, domain, auth.response, label);
    if (route.projectId !== options.projectId) {
      return this.reply(
        res,
        domain,
        error(404, 'resource_missing', `Project ${JSON.stringify(route.projectId)} not found (or not visible to this key).`, { param: 'project_id' }),
        label,
      );
    }

    const fault = this.ctx.faults.decide(options);
    if (fault !== 'none') {
      this.ctx.stats.fault(fault);
      return this.injectFault(fault, req, res, domain, label);
    }

    const limit = this.limitOf(domain);
    if (limit > 0) {
      const perWindow = Math.max(1, Math.floor((limit * options.v2RateLimitWindowMs) / 60_000));
      const decision = this.limiters[domain].take([{ limit: perWindow, windowMs: options.v2RateLimitWindowMs, kind: 'sliding' }]);
      if (!decision.allowed) {
        const response = error(429, 'rate_limit_error', `Rate limit of the ${domain.replace('_', ' ')} domain exceeded (${limit} requests per minute).`, {
          retryable: true,
          backoff_ms: decision.retryAfterMs,
        });
        return this.reply(res, domain, { ...response, headers: { 'Retry-After': String(decision.retryAfterSeconds) } }, label);
      }
    }

    const query = listQuery(url, options.v2PageSize);
    if ('response' in query) return this.reply(res, domain, query.response, label);
    const base = `/v2/projects/${encodeURIComponent(options.projectId)}`;

    if (route.kind === 'catalog') {
      const items =
        route.resource === 'entitlements'
          ? [entitlementObject(options.projectId)]
          : this.ctx.store
              .catalog()
              .map(productObject)
              .sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
      return this.reply(res, domain, { status: 200, body: page<{ id: string }>(items, `${base}/${route.resource}`, query) }, label);
    }

    const problem = checkAppUserId(route.customerId);
    if (problem) return this.reply(res, domain, error(400, 'parameter_error', `Invalid customer_id: ${messageOf(problem)}`, { param: 'customer_id' }), label);
    // Read at answer time (after the latency), like the v1 GET, so a test's admin change in between is seen.
    return this.reply(res, domain, () => this.customerResource(route, base, query), label);
  }

  /** The domain's per-minute limit in force; 0 = none (`unlimited` turns every limit off). */
  private limitOf(domain: Domain): number {
    const options = this.ctx.options();
    if (options.unlimited) return 0;
    return domain === 'customer_information' ? options.v2RateLimitPerMinute : options.v2ConfigRateLimitPerMinute;
  }

  /** A response when the request may not read, plus the key's stats label when it presented one. */
  private authenticate(raw: string | undefined): { response?: ApiResponse; label?: string } {
    if (raw === undefined || raw.trim() === '') {
      return { response: error(401, 'authentication_error', 'Missing Authorization header: send "Authorization: Bearer <secret API key>".') };
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(raw);
    if (!match?.[1]) return { response: error(401, 'authentication_error', 'Invalid Authorization header: v2 requires "Bearer <secret API key>".') };
    const key = match[1];
    // v2 has no X-Platform: a platform-bound key is refused below as a public key, not for its platform.
    const check = checkKey(this.ctx.options(), key, undefined);
    const label = check.scope === undefined ? UNKNOWN_KEY_LABEL : keyLabel(key);
    this.ctx.stats.keyRequest(label, scopeNames(check.scope));
    if (!check.ok) return { label, response: error(401, 'authentication_error', 'Invalid API key.') };
    if (!key.startsWith('sk_')) {
      return { label, response: error(403, 'authorization_error', 'This endpoint needs a secret API key (sk_…); public SDK keys cannot read customers.') };
    }
    return { label };
  }

  private customerResource(route: Extract<Route, { kind: 'customer' }>, base: string, query: ListQuery): ApiResponse {
    const options = this.ctx.options();
    const now = options.now();
    // peek, never getOrCreate: v2 reads have no side effects.
    const subscriber: StoredSubscriber | undefined = this.ctx.store.peek(route.customerId);
    if (!subscriber) return error(404, 'resource_missing', `Customer ${JSON.stringify(route.customerId)} not found.`, { param: 'customer_id' });
    const customerBase = `${base}/customers/${encodeURIComponent(route.customerId)}`;
    switch (route.resource) {
      case 'customer':
        return { status: 200, body: customer(subscriber, options.projectId, now, customerBase, query.limit) };
      case 'active_entitlements':
        return { status: 200, body: stripIds(page(activeEntitlements(subscriber, now), `${customerBase}/active_entitlements`, query)) };
      case 'subscriptions':
        return { status: 200, body: page(subscriptions(subscriber, options.projectId, now, customerBase), `${customerBase}/subscriptions`, query) };
      case 'purchases':
        return { status: 200, body: page(purchases(subscriber, options.projectId, customerBase), `${customerBase}/purchases`, query) };
    }
  }

  private async injectFault(fault: 'reset' | 'hang' | '5xx', req: IncomingMessage, res: ServerResponse, domain: Domain, label: string | undefined): Promise<void> {
    switch (fault) {
      case '5xx': {
        const status = this.ctx.faults.pick5xx();
        if (status === 500) return this.reply(res, domain, error(500, 'server_error', 'Internal server error.', { retryable: true }), label);
        const title = status === 502 ? '502 Bad Gateway' : '503 Service Temporarily Unavailable';
        return this.reply(
          res,
          domain,
          { status, raw: { contentType: 'text/html', text: `<html><head><title>${title}</title></head><body><h1>${title}</h1></body></html>` } },
          label,
        );
      }
      case 'reset':
        await this.ctx.delay();
        req.socket.destroy();
        return;
      case 'hang':
        await this.ctx.sleeper.sleep(this.ctx.options().hangMs, req.socket);
        req.socket.destroy();
        return;
    }
  }

  /** Waits the latency, then answers (a function is evaluated after the wait). */
  private async reply(res: ServerResponse, domain: Domain | undefined, response: ApiResponse | (() => ApiResponse), label?: string): Promise<void> {
    await this.ctx.delay();
    const answer = typeof response === 'function' ? response() : response;
    writeResponse(res, answer, domain ? this.rateHeaders(domain) : {});
    this.ctx.stats.response(answer.status, undefined);
    const type = errorType(answer);
    if (type !== undefined) this.ctx.stats.v2Error(type);
    if (label !== undefined) this.ctx.stats.keyAnswer(label, answer.status, type === 'rate_limit_error');
  }

  private rateHeaders(domain: Domain): Record<string, string> {
    const limit = this.limitOf(domain);
    if (limit <= 0 || this.ctx.options().rateLimitHeaders === 'none') return {};
    return {
      'RevenueCat-Rate-Limit-Current-Limit': String(limit),
      'RevenueCat-Rate-Limit-Current-Usage': String(this.limiters[domain].usagePerMinute()),
    };
  }
}

function error(status: number, type: V2ErrorType, message: string, extra: { retryable?: boolean; param?: string; backoff_ms?: number } = {}): ApiResponse {
  return { status, body: v2Error(type, message, extra) };
}

function errorType(response: ApiResponse): string | undefined {
  const body = response.body as { object?: unknown; type?: unknown } | undefined;
  return body?.object === 'error' && typeof body.type === 'string' ? body.type : undefined;
}

function messageOf(response: ApiResponse): string {
  const body = response.body as { message?: unknown } | undefined;
  return typeof body?.message === 'string' ? body.message : 'invalid';
}

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function parseRoute(path: string): Route | undefined {
  const m = /^\/v2\/projects\/([^/]+)\/(.+)$/.exec(path);
  if (!m?.[1] || m[2] === undefined) return undefined;
  const projectId = decode(m[1]);
  if (projectId === undefined) return undefined;
  const rest = m[2];
  if (rest === 'entitlements' || rest === 'products')
    return { kind: 'catalog', label: rest === 'entitlements' ? ROUTE_V2_ENTITLEMENTS : ROUTE_V2_PRODUCTS, projectId, resource: rest };
  const c = /^customers\/([^/]+)(?:\/([a-z_]+))?$/.exec(rest);
  if (!c?.[1]) return undefined;
  const sub = CUSTOMER_ROUTES[c[2] ?? ''];
  const customerId = decode(c[1]);
  if (!sub || customerId === undefined) return undefined;
  return { kind: 'customer', label: sub.label, projectId, customerId, resource: sub.resource };
}

interface ListQuery {
  limit: number;
  startingAfter: string | undefined;
}

function listQuery(url: URL, pageSize: number): ListQuery | { response: ApiResponse } {
  const rawLimit = url.searchParams.get('limit');
  let limit = pageSize;
  if (rawLimit !== null) {
    if (!/^\d+$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 1000) {
      return { response: error(400, 'parameter_error', 'limit must be an integer from 1 to 1000.', { param: 'limit' }) };
    }
    limit = Number(rawLimit);
  }
  return { limit, startingAfter: url.searchParams.get('starting_after') ?? undefined };
}
