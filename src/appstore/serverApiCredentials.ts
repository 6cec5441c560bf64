// The team's App Store Connect API key, which the App Store Server API lookups sign their JWTs with. It comes
// from the environment only (a flag would put it in shell history and `ps`): APPLE_ISSUER_ID, APPLE_KEY_ID, and
// APPLE_PRIVATE_KEY (the .p8 file's PEM text) or APPLE_PRIVATE_KEY_FILE (its path). config.ts reads them into
// the configuration like the RevenueCat keys (the _FILE variant included); this module says what is missing and
// names the key by its key id only: the private key never appears in a message.
import { createHash } from 'node:crypto';

/** The variables, as messages name them. */
export const APPLE_VARIABLES = {
  issuerId: 'APPLE_ISSUER_ID',
  keyId: 'APPLE_KEY_ID',
  privateKey: 'APPLE_PRIVATE_KEY',
  privateKeyFile: 'APPLE_PRIVATE_KEY_FILE',
} as const;

export interface AppleCredentials {
  issuerId: string;
  keyId: string;
  /** PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as App Store Connect hands it out. Never logged. */
  privateKey: string;
}

/** What the configuration holds (config.ts keys). */
export interface AppleCredentialSettings {
  appleIssuerId?: string | undefined;
  appleKeyId?: string | undefined;
  applePrivateKey?: string | undefined;
}

/** The credentials, or the variables still to set. */
export function appleCredentialsOf(config: AppleCredentialSettings): { ok: true; credentials: AppleCredentials } | { ok: false; missing: string[] } {
  const issuerId = config.appleIssuerId?.trim() ?? '';
  const keyId = config.appleKeyId?.trim() ?? '';
  const privateKey = config.applePrivateKey?.trim() ?? '';
  const missing: string[] = [];
  if (issuerId === '') missing.push(APPLE_VARIABLES.issuerId);
  if (keyId === '') missing.push(APPLE_VARIABLES.keyId);
  if (privateKey === '') missing.push(`${APPLE_VARIABLES.privateKey} (or ${APPLE_VARIABLES.privateKeyFile})`);
  if (missing.length > 0) return { ok: false, missing };
  return { ok: true, credentials: { issuerId, keyId, privateKey } };
}

/** What to tell a user whose rows need lookups but whose environment lacks the key. */
export function missingCredentialsMessage(missing: readonly string[]): string {
  return (
    `rows with a transaction_id are looked up in Apple's App Store Server API, which needs the team's App Store Connect API key: ` +
    `set ${missing.join(', ')} (the issuer id and key id from App Store Connect › Users and Access › Integrations, and the .p8 file's text or path)`
  );
}

/** How a key is named in Redis (its stop) and in messages: a hash of issuer and key id, never the private key. */
export function appleKeyFingerprint(credentials: Pick<AppleCredentials, 'issuerId' | 'keyId'>): string {
  return createHash('sha256').update(`${credentials.issuerId}\n${credentials.keyId}`).digest('hex').slice(0, 12);
}
