// The JWT every App Store Server API request carries (Apple: "Generating JSON Web Tokens for API requests"):
// ES256, header `kid` = key id and `typ` JWT; payload `iss` = issuer id, `iat`, `exp` (at most 60 minutes after
// `iat`), `aud` `appstoreconnect-v1`, `bid` = the app's bundle id. One token per bundle id is kept and reused
// until a few minutes before it lapses, then signed again: a long run never sends an expired token, and signing
// (an ECDSA signature) is not paid per request.
//
// Why jose rather than Apple's @apple/app-store-server-library: the library's base URL can only be changed by
// subclassing its protected makeFetchRequest (Apple's own tests do that), and the APIException it throws keeps
// the status and error code but drops the response headers, so a 429's Retry-After (a UNIX time in ms) is lost.
// jose is a well-kept, dependency-free JOSE implementation, and the request itself is ours (serverApiClient.ts).
import { importPKCS8, SignJWT } from 'jose';
import { ConfigError } from '../config.js';
import type { AppleCredentials } from './serverApiCredentials.js';

type SigningKey = Awaited<ReturnType<typeof importPKCS8>>;

export const APP_STORE_AUDIENCE = 'appstoreconnect-v1';
/** Apple refuses tokens valid for more than an hour. */
export const MAX_TOKEN_LIFETIME_S = 3600;

export interface ServerApiTokenOptions {
  /** how long a token is valid (s; at most MAX_TOKEN_LIFETIME_S): default 20 minutes */
  lifetimeS?: number;
  /** a token is signed again this long before its `exp` (s): default 5 minutes */
  renewBeforeS?: number;
  /** the clock (ms), for tests */
  now?: () => number;
}

/** A key that cannot sign: a configuration error (the run stops before its first lookup). */
export class AppleKeyError extends ConfigError {
  override name = 'AppleKeyError';
}

interface Signed {
  jwt: string;
  /** `exp`, in seconds */
  exp: number;
}

export class ServerApiTokens {
  readonly #credentials: AppleCredentials;
  #key: Promise<SigningKey> | undefined;
  readonly #tokens = new Map<string, Promise<Signed>>();
  readonly #lifetimeS: number;
  readonly #renewBeforeS: number;
  readonly #now: () => number;

  constructor(credentials: AppleCredentials, opts: ServerApiTokenOptions = {}) {
    this.#credentials = credentials;
    this.#lifetimeS = Math.min(opts.lifetimeS ?? 1200, MAX_TOKEN_LIFETIME_S);
    this.#renewBeforeS = Math.min(opts.renewBeforeS ?? 300, Math.floor(this.#lifetimeS / 2));
    this.#now = opts.now ?? Date.now;
  }

  get keyId(): string {
    return this.#credentials.keyId;
  }

  /** Checks that the private key can sign (a wrong .p8 stops a run before its first lookup). */
  async check(): Promise<void> {
    await this.#signingKey();
  }

  /** A valid token for the app, signed again when the kept one is within `renewBeforeS` of its expiry. */
  async tokenFor(bundleId: string): Promise<string> {
    const nowS = Math.floor(this.#now() / 1000);
    const kept = this.#tokens.get(bundleId);
    if (kept) {
      const signed = await kept.catch(() => undefined);
      if (signed && signed.exp - this.#renewBeforeS > nowS) return signed.jwt;
    }
    const next = this.#sign(bundleId, nowS);
    this.#tokens.set(bundleId, next);
    // A failed signature is not kept: the next request tries again.
    next.catch(() => {
      if (this.#tokens.get(bundleId) === next) this.#tokens.delete(bundleId);
    });
    return (await next).jwt;
  }

  async #sign(bundleId: string, iat: number): Promise<Signed> {
    const exp = iat + this.#lifetimeS;
    const jwt = await new SignJWT({ bid: bundleId })
      .setProtectedHeader({ alg: 'ES256', kid: this.#credentials.keyId, typ: 'JWT' })
      .setIssuer(this.#credentials.issuerId)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setAudience(APP_STORE_AUDIENCE)
      .sign(await this.#signingKey());
    return { jwt, exp };
  }

  #signingKey(): Promise<SigningKey> {
    this.#key ??= importPKCS8(normalizePem(this.#credentials.privateKey), 'ES256').catch(() => {
      // jose's own message may quote the input: say what is wrong without it.
      throw new AppleKeyError(
        `APPLE_PRIVATE_KEY (or the file APPLE_PRIVATE_KEY_FILE names) is not an EC P-256 private key in PKCS#8 PEM (the .p8 file from App Store Connect, key id ${this.#credentials.keyId})`,
      );
    });
    return this.#key;
  }
}

/** A PEM pasted into one environment variable often has literal `\n` for its line breaks. */
function normalizePem(pem: string): string {
  return pem.includes('\\n') && !pem.includes('\n') ? pem.replace(/\\n/g, '\n') : pem;
}
