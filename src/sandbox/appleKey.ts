// The App Store Connect API key the sandbox checks JWTs against: read from a `.p8` (the PKCS#8 PEM file App Store
// Connect hands out, an EC P-256 private key) or generated and written out as one, so a rehearsal can point the
// pipeline's APPLE_PRIVATE_KEY_FILE at it. Only the public half is needed to check a signature; the private half
// is kept for the caller that generated it (tests sign their JWTs with it) and is never shown by an admin route.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface AppleApiKey {
  publicKey: KeyObject;
  /** PKCS#8 PEM, as in a `.p8`. */
  privateKeyPem: string;
  /** The `.p8` read or written; undefined when generated and not written. */
  file: string | undefined;
  generated: boolean;
}

/** Reads `keyFile` when given, else generates a P-256 pair (written to `keyOut` when given, mode 0600). */
export function loadOrGenerateAppleKey(keyFile: string, keyOut: string): AppleApiKey {
  if (keyFile !== '') {
    let pem: string;
    try {
      pem = readFileSync(keyFile, 'utf8');
    } catch (error) {
      throw new Error(`App Store Connect key file ${keyFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
    }
    const privateKey = parsePrivateKey(pem, keyFile);
    return { publicKey: createPublicKey(privateKey), privateKeyPem: pem, file: keyFile, generated: false };
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  if (keyOut !== '') {
    mkdirSync(dirname(keyOut), { recursive: true });
    writeFileSync(keyOut, pem, { mode: 0o600 });
  }
  return { publicKey, privateKeyPem: pem, file: keyOut === '' ? undefined : keyOut, generated: true };
}

// The error names the file, never the key's text.
function parsePrivateKey(pem: string, file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error(`App Store Connect key file ${file}: not a PKCS#8 PEM private key`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`App Store Connect key file ${file}: not an EC P-256 key (App Store Connect keys are; ES256 needs one)`);
  }
  return key;
}
