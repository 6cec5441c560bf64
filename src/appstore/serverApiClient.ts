// Apple's App Store Server API, the one call the pipeline makes: GET /inApps/v1/transactions/{transactionId},
// answered with `{ "signedTransactionInfo": "<JWS>" }`. Production first; a 4040010 (transaction id not found)
// there is asked again of the sandbox environment, as Apple advises (a purchase made by TestFlight or a sandbox
// tester exists only there). APP_STORE_SERVER_API_URL (config appStoreApiUrl) replaces both with one base URL
// (the tool's sandbox, a test stand-in, a proxy): that one is asked once, and its 4040010 is final.
//
// Contract, as the RevenueCat client's: never throws for HTTP or network problems; every answer is a
// LookupResult that serverApiErrors.ts classifies. The JWT (serverApiJwt.ts; why jose, there) is the only secret
// sent and is never part of a result. undici keeps connections alive per environment.
import { Pool } from 'undici';
import { header, parseBody, requestWithDeadline, type NetworkErrorKind } from '../revenuecat/client.js';
import { parseAppleRetryAfter } from './serverApiRetryAfter.js';
import type { ServerApiTokens } from './serverApiJwt.js';

export const PRODUCTION_URL = 'https://api.storekit.apple.com';
export const SANDBOX_URL = 'https://api.storekit-sandbox.apple.com';
/** Apple's error code for "transaction id not found" (in every environment). */
export const TRANSACTION_NOT_FOUND = 4040010;

export type AppStoreEnvironment = 'production' | 'sandbox' | 'configured';

export type LookupResult =
  | { kind: 'found'; signedTransaction: string; environment: AppStoreEnvironment; durationMs: number }
  | {
      kind: 'response';
      status: number;
      /** Apple's `errorCode` (4040010 …) when the body carried one */
      errorCode?: number;
      errorMessage?: string;
      /** a 429's Retry-After: the UNIX time (ms) to wait until */
      retryAt?: number;
      environment: AppStoreEnvironment;
      durationMs: number;
    }
  | { kind: 'network'; error: NetworkErrorKind; message: string; environment: AppStoreEnvironment; durationMs: number };

export interface ServerApiClientOptions {
  tokens: Pick<ServerApiTokens, 'tokenFor'>;
  /** One base URL for every lookup (APP_STORE_SERVER_API_URL); absent: Apple's production, then sandbox. */
  baseUrl?: string | undefined;
  /** Other production and sandbox base URLs, asked as Apple's are (tests: a stand-in serving both). */
  environments?: { production: string; sandbox: string };
  timeoutMs: number;
  /** keep-alive connections per environment (default 10) */
  connections?: number;
  userAgent?: string;
  now?: () => number;
}

interface Environment {
  name: AppStoreEnvironment;
  pool: Pool;
  prefix: string;
}

/** Transaction ids are decimal digits: nothing else goes into the path. */
const TRANSACTION_ID = /^\d{1,32}$/;

export class AppStoreServerApiClient {
  readonly #environments: Environment[];
  readonly #tokens: Pick<ServerApiTokens, 'tokenFor'>;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #now: () => number;
  #closing: Promise<void> | undefined;

  constructor(opts: ServerApiClientOptions) {
    if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) throw new Error(`timeoutMs must be a positive number (got ${String(opts.timeoutMs)})`);
    const connections = opts.connections ?? 10;
    const open = (name: AppStoreEnvironment, url: string): Environment => ({ name, ...openPool(url, connections, opts.timeoutMs) });
    const urls = opts.environments ?? { production: PRODUCTION_URL, sandbox: SANDBOX_URL };
    this.#environments =
      opts.baseUrl !== undefined && opts.baseUrl !== '' ? [open('configured', opts.baseUrl)] : [open('production', urls.production), open('sandbox', urls.sandbox)];
    this.#tokens = opts.tokens;
    this.#timeoutMs = opts.timeoutMs;
    this.#userAgent = opts.userAgent ?? 'rc-migrate/0.1.0';
    this.#now = opts.now ?? Date.now;
  }

  /** Which environments a lookup asks, in order. */
  get environments(): AppStoreEnvironment[] {
    return this.#environments.map((e) => e.name);
  }

  /** The signed transaction of one transaction id of one app; production first, then sandbox on 4040010. */
  async getTransaction(transactionId: string, bundleId: string): Promise<LookupResult> {
    if (!TRANSACTION_ID.test(transactionId)) throw new Error('a transaction id is decimal digits only');
    let last: LookupResult | undefined;
    for (const env of this.#environments) {
      last = await this.#ask(env, transactionId, bundleId);
      if (!(last.kind === 'response' && last.errorCode === TRANSACTION_NOT_FOUND)) return last;
    }
    return last as LookupResult;
  }

  close(): Promise<void> {
    this.#closing ??= Promise.all(this.#environments.map((e) => e.pool.close().catch(() => undefined))).then(() => undefined);
    return this.#closing;
  }

  async #ask(env: Environment, transactionId: string, bundleId: string): Promise<LookupResult> {
    const started = performance.now();
    const elapsed = (): number => Math.round(performance.now() - started);
    const jwt = await this.#tokens.tokenFor(bundleId);
    const sent = await requestWithDeadline(
      env.pool,
      {
        method: 'GET',
        path: `${env.prefix}/inApps/v1/transactions/${transactionId}`,
        headers: { authorization: `Bearer ${jwt}`, accept: 'application/json', 'user-agent': this.#userAgent },
      },
      this.#timeoutMs,
    );
    if (!sent.ok) return { kind: 'network', error: sent.error, message: sent.message.replaceAll(jwt, '[redacted]'), environment: env.name, durationMs: elapsed() };
    const body = parseBody(sent.text) as { signedTransactionInfo?: unknown; errorCode?: unknown; errorMessage?: unknown };
    if (sent.status === 200 && typeof body.signedTransactionInfo === 'string' && body.signedTransactionInfo !== '') {
      return { kind: 'found', signedTransaction: body.signedTransactionInfo, environment: env.name, durationMs: elapsed() };
    }
    const retryAt = sent.status === 429 ? parseAppleRetryAfter(header(sent.headers, 'retry-after'), this.#now()) : undefined;
    return {
      kind: 'response',
      status: sent.status,
      ...(typeof body.errorCode === 'number' ? { errorCode: body.errorCode } : {}),
      ...(typeof body.errorMessage === 'string' ? { errorMessage: body.errorMessage.slice(0, 200) } : {}),
      ...(retryAt !== undefined ? { retryAt } : {}),
      environment: env.name,
      durationMs: elapsed(),
    };
  }
}

function openPool(baseUrl: string, connections: number, timeoutMs: number): { pool: Pool; prefix: string } {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new Error(`APP_STORE_SERVER_API_URL is not a URL: ${baseUrl}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`APP_STORE_SERVER_API_URL must be http or https (got ${url.protocol})`);
  const pool = new Pool(url.origin, {
    connections,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: timeoutMs },
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
  });
  return { pool, prefix: url.pathname.replace(/\/+$/, '') };
}
