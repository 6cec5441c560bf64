// A stand-in for Apple's App Store Server API, the one endpoint a migration uses:
// GET /inApps/v1/transactions/{transactionId} → {"signedTransactionInfo": "<JWS>"}.
//
// Environments. Apple serves production at https://api.storekit.apple.com and the sandbox environment at
// https://api.storekit-sandbox.apple.com; a client asks production first and the sandbox on 4040010. The
// sandbox serves both on its one port under three base paths:
//   <url>/production  production transactions only (4040010 for a Sandbox one), like api.storekit.apple.com
//   <url>/sandbox     Sandbox transactions only, like api.storekit-sandbox.apple.com
//   <url>             either environment (production first): for a client given ONE base URL
//                     (APP_STORE_SERVER_API_URL), so a transaction known only in Sandbox is still found there.
// The signed transaction's `environment` says which it was.
//
// Pipeline per request: JWT (401) → per-app rate limit (429 / 4290000, Retry-After a UNIX time in
// milliseconds) → transaction id (400 / 4000006) → injected fault (5000001, 4040002, 4040004, 4040006) →
// latency → lookup (404 / 4040010, or 200).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AppleApiKey } from './appleKey.js';
import { checkAppleJwt, type JwtProblem } from './appleJwt.js';
import type { AppleFaultCode } from './appleOptions.js';
import { AppleSigner, transactionPayload } from './appleSigner.js';
import { AppleTransactionCatalogue, readTransactionsFile, seedTransactions, type AppleEnvironment } from './appleTransactions.js';
import { mulberry32 } from './faults.js';
import { header, writeResponse } from './http.js';
import type { ResolvedSandboxOptions } from './options.js';
import type { ApiResponse } from './responses.js';
import type { Sleeper } from './sleeper.js';

export const ROUTE_APPLE_TRANSACTION = 'GET /inApps/v1/transactions/{transactionId}';

/** The base paths and the environments each answers for, in the order they are searched. */
export const APPLE_BASE_PATHS = { '': ['Production', 'Sandbox'], '/production': ['Production'], '/sandbox': ['Sandbox'] } as const satisfies Record<
  string,
  readonly AppleEnvironment[]
>;
type BasePath = keyof typeof APPLE_BASE_PATHS;

const PATH = /^(\/production|\/sandbox)?\/inApps\/v1\/transactions\/([^/]*)$/;
const TRANSACTION_ID = /^\d{1,20}$/;

/** Apple's error bodies for this endpoint (errorCode, errorMessage), by code. */
const APPLE_ERRORS: Record<number, { status: number; message: string }> = {
  4000006: { status: 400, message: 'Invalid transaction id.' },
  4040002: { status: 404, message: 'Account not found. Please try again.' },
  4040004: { status: 404, message: 'App not found. Please try again.' },
  4040006: { status: 404, message: 'Original transaction id not found. Please try again.' },
  4040010: { status: 404, message: 'Transaction id not found.' },
  4290000: { status: 429, message: 'Rate limit exceeded.' },
  5000001: { status: 500, message: 'An unknown error occurred. Please try again.' },
};

export function isAppleApiPath(path: string): boolean {
  return /^(\/production|\/sandbox)?\/inApps\//.test(path);
}

export interface AppStoreServerApiStats {
  /** Requests to the App Store Server API paths, on arrival (not counted in the RevenueCat `requests`). */
  requests: number;
  byStatus: Record<string, number>;
  /** Apple `errorCode`s answered ("4040010", …). */
  byErrorCode: Record<string, number>;
  /** Requests by base path: "/" (either environment), "/production", "/sandbox". */
  byBasePath: Record<string, number>;
  /** 200 answers. */
  found: number;
  /** 401 answers, and why (`kid`, `aud`, `bid`, `expired`, `signature`, `revoked`, …: see appleJwt.ts). */
  unauthorized: number;
  unauthorizedBy: Record<string, number>;
  /** 429 / 4290000 answers. */
  rateLimited: number;
  /** Injected retryable errors. */
  faults: number;
  /** Distinct JWTs accepted: a long run shows its token renewals here. */
  tokens: number;
  /** Authenticated requests per app (`bid`). */
  byBundle: Record<string, number>;
  /** The most lookups any one transaction id got (answered past the rate limit). */
  maxLookupsPerTransaction: number;
}

/** What the admin route shows of the API (no private key). */
export interface AppleApiState {
  keyId: string;
  issuerId: string;
  keyFile: string | null;
  keyGenerated: boolean;
  revoked: boolean;
  bundleIds: string[];
  ratePerSecond: number;
  faultRate: number;
  transactions: number;
  basePaths: { either: string; production: string; sandbox: string };
  signingCertificate: string;
}

type Options = ResolvedSandboxOptions;

export class AppStoreServerApi {
  private catalogue: AppleTransactionCatalogue;
  private readonly signer: AppleSigner;
  private readonly windows = new Map<string, number[]>();
  private readonly lookupCounts = new Map<string, number>();
  private readonly acceptedTokens = new Set<string>();
  private counters = emptyStats();
  private random: () => number;

  constructor(
    private readonly options: () => Options,
    private readonly key: AppleApiKey,
    private readonly sleeper: Sleeper,
  ) {
    this.catalogue = buildCatalogue(options());
    this.signer = new AppleSigner(Date.now());
    this.random = mulberry32(options().seed ^ 0x5eed_a991);
  }

  /** Re-reads the transactions (file, list, seed) after a knob change. Throws when the file is unreadable. */
  rebuildCatalogue(): void {
    this.catalogue = buildCatalogue(this.options());
  }

  /** Back to a fresh start: counters, rate windows, lookups and the fault sequence (the catalogue stays). */
  clear(): void {
    this.windows.clear();
    this.lookupCounts.clear();
    this.acceptedTokens.clear();
    this.counters = emptyStats();
    this.random = mulberry32(this.options().seed ^ 0x5eed_a991);
  }

  stats(): AppStoreServerApiStats {
    const c = this.counters;
    return {
      ...c,
      byStatus: { ...c.byStatus },
      byErrorCode: { ...c.byErrorCode },
      byBasePath: { ...c.byBasePath },
      unauthorizedBy: { ...c.unauthorizedBy },
      byBundle: { ...c.byBundle },
      tokens: this.acceptedTokens.size,
    };
  }

  lookups(): Record<string, number> {
    return Object.fromEntries(this.lookupCounts);
  }

  transactions(): ReturnType<AppleTransactionCatalogue['list']> {
    return this.catalogue.list();
  }

  state(): AppleApiState {
    const o = this.options();
    return {
      keyId: o.appleKeyId,
      issuerId: o.appleIssuerId,
      keyFile: this.key.file ?? null,
      keyGenerated: this.key.generated,
      revoked: o.appleKeyRevoked,
      bundleIds: [...this.catalogue.bundleIds],
      ratePerSecond: o.appleRatePerSecond,
      faultRate: o.appleFaultRate,
      transactions: this.catalogue.size,
      basePaths: { either: '', production: '/production', sandbox: '/sandbox' },
      signingCertificate: this.signer.certificatePem(),
    };
  }

  /** For the library caller that let the sandbox generate the key (tests sign their JWTs with it). */
  credentials(): { keyId: string; issuerId: string; bundleIds: string[]; privateKeyPem: string; keyFile: string | null } {
    const o = this.options();
    return { keyId: o.appleKeyId, issuerId: o.appleIssuerId, bundleIds: [...this.catalogue.bundleIds], privateKeyPem: this.key.privateKeyPem, keyFile: this.key.file ?? null };
  }

  async handle(req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<void> {
    req.resume();
    this.counters.requests++;
    const match = PATH.exec(url.pathname);
    if (method !== 'GET' || !match)
      return this.send(res, {
        status: 404,
        body: { errorMessage: `Not found: ${method} ${url.pathname} (the sandbox serves GET [/production|/sandbox]/inApps/v1/transactions/{transactionId}).` },
      });
    const base = (match[1] ?? '') as BasePath;
    bump(this.counters.byBasePath, base === '' ? '/' : base);
    const o = this.options();

    const auth = checkAppleJwt(header(req, 'authorization'), {
      keyId: o.appleKeyId,
      issuerId: o.appleIssuerId,
      publicKey: this.key.publicKey,
      bundleIds: this.catalogue.bundleIds,
      revoked: o.appleKeyRevoked,
      nowSeconds: Date.now() / 1000,
    });
    if (!auth.ok) return this.unauthorized(res, auth.problem);
    this.acceptedTokens.add(auth.token);
    bump(this.counters.byBundle, auth.bundleId);

    const waitMs = this.admit(auth.bundleId, o.appleRatePerSecond);
    if (waitMs > 0) {
      this.counters.rateLimited++;
      // Apple's Retry-After here is a UNIX time in milliseconds (when to try again), not a number of seconds.
      return this.send(res, withRetryAfter(appleError(4290000), Math.ceil(Date.now() + waitMs)));
    }

    let transactionId: string;
    try {
      transactionId = decodeURIComponent(match[2] ?? '');
    } catch {
      transactionId = match[2] ?? '';
    }
    if (!TRANSACTION_ID.test(transactionId)) return this.send(res, appleError(4000006));
    const count = (this.lookupCounts.get(transactionId) ?? 0) + 1;
    this.lookupCounts.set(transactionId, count);
    if (count > this.counters.maxLookupsPerTransaction) this.counters.maxLookupsPerTransaction = count;

    // One draw per admitted lookup, so the n-th lookup's fate depends only on the seed and n.
    if (this.random() < o.appleFaultRate) {
      this.counters.faults++;
      const codes: readonly AppleFaultCode[] = o.appleFaultCodes;
      return this.send(res, appleError(codes[Math.floor(this.random() * codes.length)] ?? 5000001));
    }
    await this.sleeper.sleep(o.appleLatencyMs);

    const record = this.catalogue.find(transactionId, auth.bundleId, APPLE_BASE_PATHS[base]);
    if (!record) return this.send(res, appleError(4040010));
    const original = this.catalogue.find(record.originalTransactionId, record.bundleId, [record.environment]);
    this.counters.found++;
    const payload = transactionPayload(record, o.now(), original?.purchaseDate ?? record.purchaseDate);
    return this.send(res, { status: 200, body: { signedTransactionInfo: this.signer.sign(payload) } });
  }

  private unauthorized(res: ServerResponse, problem: JwtProblem): void {
    this.counters.unauthorized++;
    bump(this.counters.unauthorizedBy, problem);
    // Apple's 401 has no JSON body; the reason header is the sandbox's, for tests and rehearsals.
    this.send(res, { status: 401, headers: { 'X-Sandbox-Reason': problem }, raw: { contentType: 'text/plain; charset=utf-8', text: 'Unauthenticated\n' } });
  }

  /** Sliding one-second window per app; 0 when admitted (and counted), else milliseconds until a slot frees. */
  private admit(bundleId: string, perSecond: number): number {
    if (perSecond <= 0) return 0;
    const now = performance.now();
    const hits = (this.windows.get(bundleId) ?? []).filter((t) => t > now - 1000);
    this.windows.set(bundleId, hits);
    if (hits.length >= perSecond) return Math.max(1, (hits[hits.length - perSecond] ?? now) + 1000 - now);
    hits.push(now);
    return 0;
  }

  private send(res: ServerResponse, response: ApiResponse): void {
    writeResponse(res, response, {});
    bump(this.counters.byStatus, response.status);
    const body = response.body as { errorCode?: unknown } | undefined;
    if (typeof body?.errorCode === 'number') bump(this.counters.byErrorCode, body.errorCode);
  }
}

function appleError(code: number): ApiResponse {
  const known = APPLE_ERRORS[code] ?? { status: 500, message: 'An unknown error occurred.' };
  return { status: known.status, body: { errorCode: code, errorMessage: known.message } };
}

function withRetryAfter(response: ApiResponse, atEpochMs: number): ApiResponse {
  return { ...response, headers: { ...response.headers, 'Retry-After': String(atEpochMs) } };
}

function buildCatalogue(o: Options): AppleTransactionCatalogue {
  const seeded = seedTransactions({
    seed: o.seed,
    bundleIds: o.appleBundleIds,
    purchases: o.appleSeedPurchases,
    products: o.appleSeedProducts,
    renewals: o.appleSeedRenewals,
    sandboxEvery: o.appleSeedSandboxEvery,
    nowMs: o.now(),
  });
  const fromFile = o.appleTransactionsFile === '' ? [] : readTransactionsFile(o.appleTransactionsFile);
  return new AppleTransactionCatalogue([...seeded, ...fromFile, ...o.appleTransactions], o.appleBundleIds);
}

function emptyStats(): AppStoreServerApiStats {
  return {
    requests: 0,
    byStatus: {},
    byErrorCode: {},
    byBasePath: {},
    found: 0,
    unauthorized: 0,
    unauthorizedBy: {},
    rateLimited: 0,
    faults: 0,
    tokens: 0,
    byBundle: {},
    maxLookupsPerTransaction: 0,
  };
}

function bump(record: Record<string, number>, key: string | number): void {
  const k = String(key);
  record[k] = (record[k] ?? 0) + 1;
}
