// Reading App Store tokens (src/appstore): every real sample in test/fixtures/apple-receipts/ checked against its
// stated truth (Apple's verifyReceipt answer, the values its source project's tests and README state), generated
// receipts and signed transactions read back field by field, and unreadable tokens coming back as `unread`.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { compactVerify, importX509, decodeProtectedHeader } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { receiptContent, readAppReceipt } from '../src/appstore/appReceipt.js';
import { readAppleToken, type AppleReading, type ReceiptReading, type SignedTransactionReading, type UnreadToken } from '../src/appstore/readToken.js';
import { payloadHash } from '../src/ledger/rowIdentity.js';
import { appleSigner, type AppleSigner, type ReceiptSpec } from './support/appleReceipts.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'apple-receipts');
const sample = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const ms = (iso: string): number => Date.parse(iso);

function asReceipt(reading: AppleReading): ReceiptReading {
  if (reading.kind !== 'receipt') throw new Error(`expected a receipt, got ${reading.kind}${reading.kind === 'unread' ? `: ${reading.why} (${reading.detail})` : ''}`);
  return reading;
}
function asSigned(reading: AppleReading): SignedTransactionReading {
  if (reading.kind !== 'signed_transaction') throw new Error(`expected a signed transaction, got ${reading.kind}`);
  return reading;
}
function asUnread(reading: AppleReading): UnreadToken {
  if (reading.kind !== 'unread') throw new Error(`expected unread, got ${reading.kind}`);
  return reading;
}

/** The SignedData content as pkijs finds it: the reference the hand-written walker is held to. */
function pkijsContent(base64: string): Buffer {
  const der = Buffer.from(base64, 'base64');
  const asn = asn1js.fromBER(new Uint8Array(der));
  if (asn.offset === -1) throw new Error('asn1js could not parse the receipt');
  const signed = new pkijs.SignedData({ schema: new pkijs.ContentInfo({ schema: asn.result }).content });
  const eContent = signed.encapContentInfo.eContent;
  if (!eContent) throw new Error('no eContent');
  return Buffer.from(eContent.getValue());
}

const RECEIPT_FILES = ['revenuecat-sandbox-receipt.b64', 'tamtamchik-mbaasy-demo-receipt.b64', 'apple-xcode-app-receipt-with-transaction', 'apple-xcode-app-receipt-empty'];
const JWS_FILES = ['apple-xcode-signed-transaction', 'apple-mock-signed-transaction.jws'];

describe('the real samples', () => {
  it('are all covered here, each with its licence beside it', () => {
    const files = readdirSync(FIXTURES).filter((f) => !f.startsWith('LICENSE') && f !== 'README.md' && !f.endsWith('.verifyReceipt.json'));
    expect(files.sort()).toEqual([...RECEIPT_FILES, ...JWS_FILES].sort());
    expect(
      readdirSync(FIXTURES)
        .filter((f) => f.startsWith('LICENSE'))
        .sort(),
    ).toEqual(['LICENSE.apple-app-store-server-library-node', 'LICENSE.revenuecat-purchases-ios', 'LICENSE.tamtamchik-app-store-receipt-parser']);
  });

  it("RevenueCat's sandbox receipt says what Apple's verifyReceipt answered for it, purchase by purchase", () => {
    const truth = JSON.parse(sample('revenuecat-sandbox-receipt.verifyReceipt.json'));
    const reading = asReceipt(readAppleToken(sample('revenuecat-sandbox-receipt.b64')));
    expect(truth.receipt.receipt_type).toBe('ProductionSandbox');
    expect(reading.environment).toBe('sandbox');
    expect(reading.receipt.environment).toBe(truth.receipt.receipt_type);
    expect(reading.bundleId).toBe(truth.receipt.bundle_id);
    expect(reading.dateMs).toBe(Number(truth.receipt.receipt_creation_date_ms));
    expect(reading.receipt.appVersion).toBe(truth.receipt.application_version);
    expect(reading.receipt.originalAppVersion).toBe(truth.receipt.original_application_version);

    const expected = (truth.receipt.in_app as Record<string, string>[])
      .map((p) => ({
        productId: p.product_id,
        transactionId: p.transaction_id,
        originalTransactionId: p.original_transaction_id,
        purchaseMs: Number(p.purchase_date_ms),
        expiresMs: Number(p.expires_date_ms),
      }))
      .sort((a, b) => a.transactionId!.localeCompare(b.transactionId!));
    expect(expected).toHaveLength(9);
    const read = reading.purchases.map((p) => ({ ...p })).sort((a, b) => a.transactionId.localeCompare(b.transactionId));
    expect(read).toEqual(expected);
    // The raw receipt also holds what the shared shape leaves out.
    const raw = [...reading.receipt.purchases].sort((a, b) => a.transactionId.localeCompare(b.transactionId));
    const truthSorted = [...truth.receipt.in_app].sort((a: Record<string, string>, b: Record<string, string>) => a.transaction_id!.localeCompare(b.transaction_id!));
    raw.forEach((p, i) => {
      expect(p.quantity).toBe(Number(truthSorted[i].quantity));
      expect(p.originalPurchaseMs).toBe(Number(truthSorted[i].original_purchase_date_ms));
      expect(p.cancellationMs).toBeUndefined();
    });
    // An upgrade keeps the original transaction: the annual plan shares the monthly plan's.
    expect(reading.originalTransactionIds).toEqual(['1000000692878476']);
    expect(reading.expiresMs).toBe(Math.max(...expected.map((p) => p.expiresMs)));
  });

  it("the tamtamchik receipt: bundle, sandbox, creation date and the seven purchases its project's README lists, the consumable without expiry", () => {
    const reading = asReceipt(readAppleToken(sample('tamtamchik-mbaasy-demo-receipt.b64')));
    expect(reading).toMatchObject({ environment: 'sandbox', bundleId: 'com.mbaasy.ios.demo', dateMs: ms('2015-08-13T07:50:46Z') });
    expect(reading.receipt).toMatchObject({ environment: 'ProductionSandbox', appVersion: '1', originalAppVersion: '1.0' });
    expect(reading.purchases.map((p) => p.transactionId)).toEqual([
      '1000000166865231',
      '1000000166965150',
      '1000000166965327',
      '1000000166965895',
      '1000000166967152',
      '1000000166967484',
      '1000000166967782',
    ]);
    expect(reading.originalTransactionIds).toEqual(['1000000166865231', '1000000166965150']);
    // The consumable: its 1708 and 1712 are present and empty.
    expect(reading.purchases[0]).toEqual({
      productId: 'consumable',
      transactionId: '1000000166865231',
      originalTransactionId: '1000000166865231',
      purchaseMs: ms('2015-08-07T20:37:55Z'),
    });
    expect(reading.purchases[1]).toEqual({
      productId: 'monthly',
      transactionId: '1000000166965150',
      originalTransactionId: '1000000166965150',
      purchaseMs: ms('2015-08-10T06:49:32Z'),
      expiresMs: ms('2015-08-10T06:54:32Z'),
    });
    expect(reading.purchases[6]).toMatchObject({ productId: 'monthly', purchaseMs: ms('2015-08-10T07:14:32Z'), expiresMs: ms('2015-08-10T07:19:32Z') });
    expect(reading.purchases.slice(1).every((p) => p.productId === 'monthly' && p.originalTransactionId === '1000000166965150')).toBe(true);
    expect(reading.receipt.purchases[1]!.originalPurchaseMs).toBe(ms('2015-08-10T06:49:33Z'));
    expect(reading.expiresMs).toBe(ms('2015-08-10T07:19:32Z'));
  });

  it("Xcode's receipt with a transaction (BER, indefinite lengths, wrapped OCTET STRING) reads: the values Apple's tests state", () => {
    const token = sample('apple-xcode-app-receipt-with-transaction');
    // It really is BER with an indefinite length at the top: a DER reader would stop here.
    expect(Buffer.from(token, 'base64').subarray(0, 2)).toEqual(Buffer.of(0x30, 0x80));
    const reading = asReceipt(readAppleToken(token));
    expect(reading).toMatchObject({ environment: 'xcode', bundleId: 'com.example.naturelab.backyardbirds.example', dateMs: 1697679940_000 });
    expect(reading.receipt.environment).toBe('Xcode');
    expect(reading.receipt.appVersion).toBe('1');
    expect(reading.receipt.originalAppVersion).toBeUndefined();
    // Xcode writes no original transaction id (1705): the transaction is its own original.
    expect(reading.purchases).toEqual([
      { productId: 'pass.premium', transactionId: '0', originalTransactionId: '0', purchaseMs: ms('2023-10-19T01:45:36Z'), expiresMs: ms('2023-11-19T01:45:36Z') },
    ]);
    expect(reading.receipt.purchases[0]!.quantity).toBe(1);
  });

  it("Xcode's empty receipt reads with no purchase", () => {
    const reading = asReceipt(readAppleToken(sample('apple-xcode-app-receipt-empty')));
    expect(reading).toMatchObject({ environment: 'xcode', bundleId: 'com.example.naturelab.backyardbirds.example', dateMs: ms('2023-10-19T01:18:54Z') });
    expect(reading.purchases).toEqual([]);
    expect(reading.originalTransactionIds).toEqual([]);
    expect(reading.expiresMs).toBeUndefined();
  });

  it.each(RECEIPT_FILES)('%s: the content the reader walks to is byte for byte what pkijs (ContentInfo, SignedData) finds', (file) => {
    const token = sample(file);
    expect(receiptContent(Buffer.from(token, 'base64')).equals(pkijsContent(token))).toBe(true);
  });

  it("Xcode's signed transaction: every payload field, fractional milliseconds kept in the transaction, whole in the shared shape", () => {
    const token = sample('apple-xcode-signed-transaction');
    expect(decodeProtectedHeader(token)).toMatchObject({ kid: 'Apple_Xcode_Key', alg: 'ES256' });
    const reading = asSigned(readAppleToken(token));
    expect(reading.transaction).toEqual({
      environment: 'Xcode',
      bundleId: 'com.example.naturelab.backyardbirds.example',
      signedMs: 1697679936056.485,
      transactionId: '0',
      originalTransactionId: '0',
      productId: 'pass.premium',
      purchaseMs: 1697679936049.7297,
      expiresMs: 1700358336049.7297,
      type: 'Auto-Renewable Subscription',
      inAppOwnershipType: 'PURCHASED',
    });
    expect(reading).toMatchObject({ environment: 'xcode', bundleId: 'com.example.naturelab.backyardbirds.example', dateMs: 1697679936056, expiresMs: 1700358336049 });
    expect(reading.purchases).toEqual([{ productId: 'pass.premium', transactionId: '0', originalTransactionId: '0', purchaseMs: 1697679936049, expiresMs: 1700358336049 }]);
  });

  it("Apple's mock signed transaction: sandbox, bundle and signed date, and no purchase fields at all", () => {
    const reading = asSigned(readAppleToken(sample('apple-mock-signed-transaction.jws')));
    expect(reading.transaction).toEqual({ environment: 'Sandbox', bundleId: 'com.example', signedMs: 1672956154000 });
    expect(reading).toMatchObject({ environment: 'sandbox', bundleId: 'com.example', dateMs: 1672956154000, purchases: [], originalTransactionIds: [] });
  });

  it('a receipt wrapped in lines (as some exports store base64) reads the same', () => {
    const token = sample('revenuecat-sandbox-receipt.b64');
    const wrapped = token.match(/.{1,76}/g)!.join('\r\n') + '\n';
    const plain = readAppleToken(token);
    const read = readAppleToken(wrapped);
    expect(read).toEqual({ ...plain, plainToken: false });
    // the payload hash checks a wrapped token itself (JSON writes its line breaks escaped)
    expect([plain.kind !== 'unread' && plain.plainToken, read.kind !== 'unread' && read.plainToken]).toEqual([true, false]);
  });
});

describe('generated tokens', () => {
  let signer: AppleSigner;
  beforeAll(async () => {
    signer = await appleSigner();
  });

  const spec: ReceiptSpec = {
    environment: 'Production',
    bundleId: 'com.example.app',
    creationMs: ms('2024-05-06T07:08:09Z'),
    appVersion: '42',
    originalAppVersion: '3.1',
    purchases: [
      {
        productId: 'com.example.monthly',
        transactionId: '2000000000000001',
        originalTransactionId: '2000000000000001',
        purchaseMs: ms('2024-03-01T10:00:00Z'),
        expiresMs: ms('2024-04-01T10:00:00Z'),
      },
      {
        productId: 'com.example.monthly',
        transactionId: '2000000000000002',
        originalTransactionId: '2000000000000001',
        purchaseMs: ms('2024-04-01T10:00:00Z'),
        expiresMs: ms('2024-05-01T10:00:00Z'),
        cancellationMs: null,
      },
      {
        productId: 'com.example.coins',
        transactionId: '2000000000000003',
        originalTransactionId: '2000000000000003',
        purchaseMs: ms('2024-04-02T11:00:00Z'),
        expiresMs: null,
        quantity: 5,
      },
      {
        productId: 'com.example.lifetime',
        transactionId: '2000000000000004',
        originalTransactionId: '2000000000000004',
        purchaseMs: ms('2024-04-03T12:00:00Z'),
        cancellationMs: ms('2024-04-04T12:00:00Z'),
      },
    ],
  };

  it('a receipt round-trips every field, an empty 1708 giving no expiry', async () => {
    const reading = asReceipt(readAppleToken(await signer.receipt(spec)));
    expect(reading).toMatchObject({ environment: 'production', bundleId: 'com.example.app', dateMs: spec.creationMs, expiresMs: ms('2024-05-01T10:00:00Z') });
    expect(reading.receipt).toMatchObject({ environment: 'Production', bundleId: 'com.example.app', creationMs: spec.creationMs, appVersion: '42', originalAppVersion: '3.1' });
    expect(reading.purchases).toEqual([
      {
        productId: 'com.example.monthly',
        transactionId: '2000000000000001',
        originalTransactionId: '2000000000000001',
        purchaseMs: ms('2024-03-01T10:00:00Z'),
        expiresMs: ms('2024-04-01T10:00:00Z'),
      },
      {
        productId: 'com.example.monthly',
        transactionId: '2000000000000002',
        originalTransactionId: '2000000000000001',
        purchaseMs: ms('2024-04-01T10:00:00Z'),
        expiresMs: ms('2024-05-01T10:00:00Z'),
      },
      { productId: 'com.example.coins', transactionId: '2000000000000003', originalTransactionId: '2000000000000003', purchaseMs: ms('2024-04-02T11:00:00Z') },
      {
        productId: 'com.example.lifetime',
        transactionId: '2000000000000004',
        originalTransactionId: '2000000000000004',
        purchaseMs: ms('2024-04-03T12:00:00Z'),
        revokedMs: ms('2024-04-04T12:00:00Z'),
      },
    ]);
    expect(reading.receipt.purchases.map((p) => p.quantity)).toEqual([1, 1, 5, 1]);
    expect(reading.originalTransactionIds).toEqual(['2000000000000001', '2000000000000003', '2000000000000004']);
  });

  it.each([
    ['ProductionSandbox', 'sandbox'],
    ['Xcode', 'xcode'],
    [undefined, 'production'],
  ] as const)('environment %s reads as %s', async (environment, expected) => {
    const { environment: _drop, ...rest } = spec;
    const reading = asReceipt(readAppleToken(await signer.receipt(environment === undefined ? rest : { ...rest, environment })));
    expect(reading.environment).toBe(expected);
  });

  it('a receipt is a real PKCS#7 SignedData: pkijs verifies its signature and finds the content the reader walks', async () => {
    const token = await signer.receipt({ ...spec, base64Length: 6000 });
    const der = Buffer.from(token, 'base64');
    const signed = new pkijs.SignedData({ schema: new pkijs.ContentInfo({ schema: asn1js.fromBER(new Uint8Array(der)).result }).content });
    expect(signed.certificates).toHaveLength(3);
    expect(await signed.verify({ signer: 0, checkChain: false })).toBe(true);
    expect(receiptContent(der).equals(pkijsContent(token))).toBe(true);
  });

  it('a receipt encoded as Xcode does (BER, indefinite lengths, constructed content) reads the same, and pkijs verifies it', async () => {
    const token = await signer.receipt({ ...spec, ber: true });
    const der = Buffer.from(token, 'base64');
    expect(der.subarray(0, 2)).toEqual(Buffer.of(0x30, 0x80));
    const { receipt: _ber, ...read } = asReceipt(readAppleToken(token));
    const { receipt: _der, ...expected } = asReceipt(readAppleToken(await signer.receipt(spec)));
    expect(read).toEqual(expected);
    const signed = new pkijs.SignedData({ schema: new pkijs.ContentInfo({ schema: asn1js.fromBER(new Uint8Array(der)).result }).content });
    expect(await signed.verify({ signer: 0, checkChain: false })).toBe(true);
    expect(receiptContent(der).equals(pkijsContent(token))).toBe(true);
  });

  it.each([3000, 7500, 12000])('pads to %i base64 characters with random, incompressible bytes', async (length) => {
    const [a, b, bare] = await Promise.all([signer.receipt({ ...spec, base64Length: length }), signer.receipt({ ...spec, base64Length: length }), signer.receipt(spec)]);
    expect(Math.abs(a.length - length)).toBeLessThanOrEqual(16);
    expect(a).not.toBe(b);
    const bytes = Buffer.from(a, 'base64');
    // The padding does not compress at all (a repeated pattern would shrink to almost nothing). Real receipts
    // deflate to 0.43-0.80 of their size (the samples): these are, if anything, harder on a bench.
    const padding = bytes.length - Buffer.from(bare, 'base64').length;
    expect(padding).toBeGreaterThan(length / 2 - 2000);
    expect(deflateSync(bytes).length).toBeGreaterThan(padding);
    expect(readAppReceipt(bytes).purchases).toHaveLength(4);
  });

  it("a receipt of 1,000 purchases (an old app's years of consumables) reads every one, where asn1js's node limit gives up", async () => {
    const purchases = Array.from({ length: 1000 }, (_, i) => ({
      productId: 'com.example.coins',
      transactionId: String(3e15 + i),
      originalTransactionId: String(3e15 + i),
      purchaseMs: spec.creationMs - i * 60_000,
      expiresMs: null,
    }));
    const token = await signer.receipt({ ...spec, purchases });
    const reading = asReceipt(readAppleToken(token));
    expect(reading.purchases).toHaveLength(1000);
    expect(reading.purchases[999]).toEqual({
      productId: 'com.example.coins',
      transactionId: String(3e15 + 999),
      originalTransactionId: String(3e15 + 999),
      purchaseMs: spec.creationMs - 999 * 60_000,
    });
    expect(asn1js.fromBER(new Uint8Array(Buffer.from(token, 'base64'))).offset).toBe(-1);
  });

  it('a receipt without 1705 takes the transaction as its own original, as Xcode receipts need', async () => {
    const reading = asReceipt(readAppleToken(await signer.receipt({ ...spec, purchases: [{ productId: 'p', transactionId: '7', purchaseMs: spec.creationMs }] })));
    expect(reading.purchases).toEqual([{ productId: 'p', transactionId: '7', originalTransactionId: '7', purchaseMs: spec.creationMs }]);
  });

  it('a signed transaction round-trips every field and verifies with the key of its x5c leaf', async () => {
    const token = await signer.signedTransaction({
      environment: 'Sandbox',
      bundleId: 'com.example.app',
      signedMs: 1714979289123.25,
      transactionId: '2000000000000009',
      originalTransactionId: '2000000000000001',
      productId: 'com.example.monthly',
      purchaseMs: 1714979280000,
      expiresMs: 1717657680000.5,
      revocationMs: 1715000000000,
      type: 'Auto-Renewable Subscription',
    });
    const reading = asSigned(readAppleToken(token));
    expect(reading.transaction).toEqual({
      environment: 'Sandbox',
      bundleId: 'com.example.app',
      signedMs: 1714979289123.25,
      transactionId: '2000000000000009',
      originalTransactionId: '2000000000000001',
      productId: 'com.example.monthly',
      purchaseMs: 1714979280000,
      expiresMs: 1717657680000.5,
      revocationMs: 1715000000000,
      type: 'Auto-Renewable Subscription',
      inAppOwnershipType: 'PURCHASED',
    });
    expect(reading).toMatchObject({ environment: 'sandbox', dateMs: 1714979289123, expiresMs: 1717657680000, originalTransactionIds: ['2000000000000001'] });
    expect(reading.purchases).toEqual([
      {
        productId: 'com.example.monthly',
        transactionId: '2000000000000009',
        originalTransactionId: '2000000000000001',
        purchaseMs: 1714979280000,
        expiresMs: 1717657680000,
        revokedMs: 1715000000000,
      },
    ]);
    const header = decodeProtectedHeader(token);
    expect(header.x5c).toHaveLength(3);
    const leaf = await importX509(`-----BEGIN CERTIFICATE-----\n${header.x5c![0]}\n-----END CERTIFICATE-----`, 'ES256');
    await expect(compactVerify(token, leaf)).resolves.toBeTruthy();
  });
});

describe('tokens that cannot be read are unread, never an exception', () => {
  const receipt = sample('revenuecat-sandbox-receipt.b64');

  function expectUnread(token: string, why: UnreadToken['why']): UnreadToken {
    const reading = asUnread(readAppleToken(token));
    expect(reading.why).toBe(why);
    // The reason never quotes the token.
    if (token.trim().length >= 12) expect(reading.detail).not.toContain(token.trim().slice(0, 12));
    return reading;
  }

  it('an iOS 6 transaction receipt (base64 of an old-style plist)', () => {
    const plist =
      '{\n\t"signature" = "AnWbzM0E9a2x2GD+Zq5WcJ5p";\n\t"purchase-info" = "ewoJIm9yaWdpbmFsLXB1cmNoYXNlLWRhdGUtcHN0IiA9ICIyMDEyLTA0LTMwIDA4OjA1OjU1";\n\t"environment" = "Sandbox";\n\t"pod" = "100";\n\t"signing-status" = "0";\n}';
    expectUnread(Buffer.from(plist).toString('base64'), 'transaction_receipt');
  });

  it('empty, random text, and base64 of something else', () => {
    expectUnread('   ', 'empty');
    expectUnread('not a receipt at all, just words', 'not_base64');
    expectUnread('MIIT%$#@', 'not_base64');
    expectUnread(Buffer.from('hello, this is base64 but not a receipt').toString('base64'), 'not_receipt');
    expectUnread(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]).toString('base64'), 'not_receipt');
  });

  it("a real receipt with a character outside base64's alphabet in it is not base64 (the decoder would read a non-ASCII one as some byte)", () => {
    const at = Math.floor(receipt.length / 2);
    for (const c of ['é', '€', '"', '\\', '\u0000', '*']) expectUnread(`${receipt.slice(0, at)}${c}${receipt.slice(at + 1)}`, 'not_base64');
    // and the receipt itself reads
    expect(readAppleToken(receipt).kind).toBe('receipt');
  });

  it('truncated base64 of a real receipt', () => {
    expectUnread(receipt.slice(0, 4000), 'truncated');
    expectUnread(receipt.slice(0, 8), 'truncated');
    expectUnread(sample('apple-xcode-app-receipt-with-transaction').slice(0, 1200), 'truncated');
    // Cut where the base64 itself no longer decodes cleanly.
    expectUnread(receipt.slice(0, 4001), 'not_base64');
  });

  it('a JWS whose payload is not a signed transaction', () => {
    const part = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
    const header = part({ alg: 'ES256' });
    expectUnread(`${header}.${part('not json')}.c2ln`, 'not_signed_transaction');
    expectUnread(`${header}.${part({ bundleId: 'com.example' })}.c2ln`, 'not_signed_transaction');
    expectUnread(`${header}.${part({ environment: 'Production', bundleId: 'b', signedDate: 1, transactionId: '1' })}.c2ln`, 'not_signed_transaction');
    expectUnread(`${header}.${part({ environment: 'Production', bundleId: 'b', signedDate: 'yesterday' })}.c2ln`, 'not_signed_transaction');
    expectUnread(`${header}.${part({ environment: 'Staging', bundleId: 'b', signedDate: 1 })}.c2ln`, 'unknown_environment');
  });

  it('generated receipts missing a field every receipt has, or with an unknown environment', async () => {
    const signer = await appleSigner();
    const base: ReceiptSpec = { environment: 'Production', bundleId: 'com.example.app', creationMs: ms('2024-01-01T00:00:00Z'), purchases: [] };
    expectUnread(await signer.receipt({ ...base, bundleId: '' }), 'not_receipt');
    expectUnread(await signer.receipt({ ...base, environment: 'Staging' }), 'unknown_environment');
    expect(asUnread(readAppleToken(await signer.receipt({ ...base, purchases: [{ productId: '', transactionId: '1', purchaseMs: 0 }] }))).detail).toContain('1702');
  });

  it('no cut or flipped byte of a real receipt makes the reader throw', () => {
    const tokens = RECEIPT_FILES.map((f) => Buffer.from(sample(f), 'base64'));
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const kinds = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const bytes = Buffer.from(tokens[i % tokens.length]!);
      if (i % 2 === 0) {
        const at = random(Math.min(bytes.length, 600));
        bytes[at] = bytes[at]! ^ (1 << random(8));
      }
      const cut = i % 3 === 0 ? bytes.subarray(0, random(bytes.length)) : bytes;
      const reading = readAppleToken(cut.toString('base64'));
      kinds.add(reading.kind === 'unread' ? reading.why : reading.kind);
    }
    expect(kinds.has('truncated')).toBe(true);
    expect(kinds.has('receipt')).toBe(true);
  });

  it('a token is called plain only when JSON writes it as it is, and its payload hash is the same either way', () => {
    const tokens = [...RECEIPT_FILES.map((f) => sample(f).trim()), ...JWS_FILES.map((f) => sample(f).trim())];
    const slipped = ['"', '\\', '\n', '\t', '\u0000', '\u007f', 'é', '€', '\ud800', '=', ' ', '-', '_', '.', '+', '/'];
    let seed = 7;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      // the high bits: an LCG's low bits repeat with a short period
      return (seed >>> 12) % n;
    };
    const counted = { plain: 0, notPlain: 0 };
    for (let i = 0; i < 3000; i++) {
      let token = tokens[i % tokens.length]!;
      // a character slipped in or put in place of one, near the start, anywhere, or at the end
      for (let k = i % 4 === 0 ? 0 : 1 + random(2); k > 0; k--) {
        const at = [random(40), random(token.length), token.length - random(4)][random(3)]!;
        const c = random(3) === 0 ? String.fromCharCode(random(0x3000)) : slipped[random(slipped.length)]!;
        token = random(2) === 0 ? token.slice(0, at) + c + token.slice(at) : token.slice(0, at) + c + token.slice(at + 1);
      }
      const reading = readAppleToken(token);
      if (reading.kind === 'unread') continue;
      const sent = token.trim();
      const body = { app_user_id: 'u1', fetch_token: sent };
      if (reading.plainToken) {
        counted.plain++;
        expect(JSON.stringify(sent)).toBe(`"${sent}"`);
        expect(payloadHash('ios', body, true)).toEqual(payloadHash('ios', body));
      } else counted.notPlain++;
    }
    // both answers were met: tokens read and plain, tokens read (a character taken out or mapped) and not
    expect(counted.plain).toBeGreaterThan(300);
    expect(counted.notPlain).toBeGreaterThan(0);
  });
});
