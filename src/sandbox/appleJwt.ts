// The bearer JWT of an App Store Server API request, checked as Apple documents it ("Generating JSON Web Tokens
// for API requests"): header alg ES256, kid = the key id, typ JWT; payload iss = the issuer id, iat, exp (at most
// 60 minutes after iat, not passed), aud appstoreconnect-v1, bid = an app of the account; signature ES256 (JOSE's
// raw r‖s) against the key's public half. Apple answers every failure with a bare 401; the reason is the
// sandbox's own, for stats and a response header, so a test can tell which check failed.
import { verify, type KeyObject } from 'node:crypto';

export const APPLE_AUDIENCE = 'appstoreconnect-v1';
/** Apple refuses tokens whose exp is more than 60 minutes after iat. */
export const MAX_TOKEN_LIFETIME_S = 3600;
/** Tolerated clock difference for iat in the future. */
const CLOCK_SKEW_S = 60;

export type JwtProblem = 'missing' | 'malformed' | 'alg' | 'kid' | 'typ' | 'signature' | 'iss' | 'aud' | 'bid' | 'iat' | 'exp' | 'expired' | 'lifetime' | 'revoked';

export interface JwtExpectations {
  keyId: string;
  issuerId: string;
  publicKey: KeyObject;
  bundleIds: ReadonlySet<string>;
  revoked: boolean;
  /** Wall-clock seconds (tokens are made with the client's real clock, so never the frozen `now` knob). */
  nowSeconds: number;
}

export type JwtCheck = { ok: true; bundleId: string; token: string } | { ok: false; problem: JwtProblem };

export function checkAppleJwt(authorization: string | undefined, expect: JwtExpectations): JwtCheck {
  const fail = (problem: JwtProblem): JwtCheck => ({ ok: false, problem });
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!match?.[1]) return fail('missing');
  const token = match[1];
  const parts = token.split('.');
  if (parts.length !== 3) return fail('malformed');
  const [headerPart = '', payloadPart = '', signaturePart = ''] = parts;
  const header = decode(headerPart);
  const payload = decode(payloadPart);
  if (!header || !payload) return fail('malformed');
  if (header.alg !== 'ES256') return fail('alg');
  if (header.kid !== expect.keyId) return fail('kid');
  if (header.typ !== 'JWT') return fail('typ');
  const signature = Buffer.from(signaturePart, 'base64url');
  // ES256 in a JWS is r‖s, 64 bytes; a DER signature here is a client bug Apple refuses too.
  if (signature.length !== 64 || !verify('sha256', Buffer.from(`${headerPart}.${payloadPart}`), { key: expect.publicKey, dsaEncoding: 'ieee-p1363' }, signature)) {
    return fail('signature');
  }
  if (expect.revoked) return fail('revoked');
  if (payload.iss !== expect.issuerId) return fail('iss');
  if (payload.aud !== APPLE_AUDIENCE) return fail('aud');
  if (typeof payload.bid !== 'string' || !expect.bundleIds.has(payload.bid)) return fail('bid');
  const { iat, exp } = payload;
  if (typeof iat !== 'number' || !Number.isFinite(iat) || iat > expect.nowSeconds + CLOCK_SKEW_S) return fail('iat');
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return fail('exp');
  if (exp - iat > MAX_TOKEN_LIFETIME_S) return fail('lifetime');
  if (exp <= expect.nowSeconds) return fail('expired');
  return { ok: true, bundleId: payload.bid, token };
}

function decode(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
