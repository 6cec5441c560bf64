// A self-signed X.509 certificate for the sandbox's signing key, built with asn1js: a signed transaction carries
// its signer's certificate chain in the JWS `x5c` header (Apple's: three certificates; Xcode's: one). The
// sandbox's chain is one certificate, like Xcode's; nothing in a migration verifies it (RevenueCat asks Apple).
import { createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';

const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID_COMMON_NAME = '2.5.4.3';
const OID_ORGANIZATION = '2.5.4.10';
const YEAR_MS = 365 * 86_400_000;

/** DER of a v3 certificate for `privateKey`'s public key, signed by itself (ECDSA with SHA-256). */
export function selfSignedCertificate(privateKey: KeyObject, commonName: string, nowMs: number): Buffer {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const algorithm = new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID_ECDSA_WITH_SHA256 })] });
  const name = new asn1js.Sequence({
    value: [
      new asn1js.Set({ value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID_COMMON_NAME }), new asn1js.Utf8String({ value: commonName })] })] }),
      new asn1js.Set({
        value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID_ORGANIZATION }), new asn1js.Utf8String({ value: 'rc-migrate sandbox' })] })],
      }),
    ],
  });
  // A positive serial in minimal DER: the top bit cleared and the next one set. A first byte of 0x00 followed by one
  // under 0x80 is not minimal, and OpenSSL refuses the certificate then (1 sandbox start in 256 did).
  const serial = randomBytes(8);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40;
  const tbs = new asn1js.Sequence({
    value: [
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Integer({ value: 2 })] }),
      new asn1js.Integer({ valueHex: serial }),
      algorithm,
      name,
      new asn1js.Sequence({ value: [new asn1js.UTCTime({ valueDate: new Date(nowMs - 86_400_000) }), new asn1js.UTCTime({ valueDate: new Date(nowMs + 10 * YEAR_MS) })] }),
      name,
      asn1js.fromBER(spki).result,
    ],
  });
  const tbsDer = Buffer.from(tbs.toBER(false));
  const signature = sign('sha256', tbsDer, privateKey);
  const certificate = new asn1js.Sequence({ value: [asn1js.fromBER(tbsDer).result, algorithm, new asn1js.BitString({ valueHex: signature })] });
  return Buffer.from(certificate.toBER(false));
}

export function pem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}
