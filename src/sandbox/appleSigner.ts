// Signs what the App Store Server API stand-in answers: a signed transaction is a JWS (ES256) whose header carries
// the signer's certificate in `x5c`, as Apple's do. The key pair is the sandbox's own, made at start; it is not the
// App Store Connect key that checks request JWTs (Apple signs with Apple's key, the developer with theirs).
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { pem, selfSignedCertificate } from './appleCertificate.js';
import type { AppleTransactionRecord } from './appleTransactions.js';

export class AppleSigner {
  private readonly privateKey: KeyObject;
  private readonly certificate: Buffer;

  constructor(nowMs: number) {
    this.privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    this.certificate = selfSignedCertificate(this.privateKey, 'rc-migrate sandbox App Store signing', nowMs);
  }

  /** The signing certificate (PEM), so a test can check a signed transaction's signature. */
  certificatePem(): string {
    return pem(this.certificate);
  }

  sign(payload: Record<string, unknown>): string {
    const header = base64url(JSON.stringify({ alg: 'ES256', x5c: [this.certificate.toString('base64')] }));
    const body = base64url(JSON.stringify(payload));
    const signature = sign('sha256', Buffer.from(`${header}.${body}`), { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${header}.${body}.${signature.toString('base64url')}`;
  }
}

/** Apple's JWSTransactionDecodedPayload for a record (the fields a migration reads, and the usual others). */
/** `originalPurchaseDateMs`: the original transaction's purchase date (a renewal's differs from its own). */
export function transactionPayload(record: AppleTransactionRecord, signedDateMs: number, originalPurchaseDateMs = record.purchaseDate): Record<string, unknown> {
  const type = record.type ?? (record.expiresDate === undefined ? 'Non-Consumable' : 'Auto-Renewable Subscription');
  const renewal = record.transactionId !== record.originalTransactionId;
  return {
    transactionId: record.transactionId,
    originalTransactionId: record.originalTransactionId,
    ...(type === 'Auto-Renewable Subscription' ? { webOrderLineItemId: `${record.transactionId}9`, subscriptionGroupIdentifier: '21000000' } : {}),
    bundleId: record.bundleId,
    productId: record.productId,
    purchaseDate: record.purchaseDate,
    originalPurchaseDate: originalPurchaseDateMs,
    ...(record.expiresDate === undefined ? {} : { expiresDate: record.expiresDate }),
    quantity: 1,
    type,
    inAppOwnershipType: 'PURCHASED',
    signedDate: signedDateMs,
    environment: record.environment,
    ...(type === 'Auto-Renewable Subscription' ? { transactionReason: renewal ? 'RENEWAL' : 'PURCHASE' } : { transactionReason: 'PURCHASE' }),
    storefront: 'USA',
    storefrontId: '143441',
    price: 4990,
    currency: 'USD',
    ...(record.revocationDate === undefined ? {} : { revocationDate: record.revocationDate, revocationReason: 0 }),
  };
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}
