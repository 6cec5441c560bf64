// The sandbox's self-signed signing certificate (src/sandbox/appleCertificate.ts) must be DER that OpenSSL takes,
// whatever its random serial: a non-minimal serial (0x00 then a byte under 0x80) made 1 start in 256 fail.
import { describe, expect, it } from 'vitest';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { selfSignedCertificate } from '../src/sandbox/appleCertificate.js';

describe('the sandbox signing certificate', () => {
  it('parses and verifies for every random serial, and the serial is positive', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const now = Date.UTC(2026, 11, 7);
    for (let i = 0; i < 2000; i++) {
      const certificate = new X509Certificate(selfSignedCertificate(privateKey, 'test', now));
      expect(certificate.verify(certificate.publicKey)).toBe(true);
      expect(Number.parseInt(certificate.serialNumber.slice(0, 2), 16)).toBeGreaterThanOrEqual(0x40);
      expect(certificate.serialNumber).toHaveLength(16);
    }
  });
});
