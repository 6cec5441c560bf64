// One purchase, one POST for rows given by a transaction id (issue 17), without Redis: which row of a user's lookup
// group is posted (the newest transaction of each purchase, whatever order the rows were signed or read in), and
// the survey's count of each user's rows that sizes the groups.
import { beforeAll, describe, expect, it } from 'vitest';
import { renewalDecision, splitPlace, type RenewalRow } from '../src/appstore/lookup/renewals.js';
import { LookupGroupCount } from '../src/ingest/lookupGroupCount.js';
import { appleSigner, type AppleSigner } from './support/appleReceipts.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 1);
let signer: AppleSigner;

beforeAll(async () => {
  signer = await appleSigner();
});

/** A looked-up transaction: signed at `signedMs` (lookup time), bought `monthsAgo` months ago, expiring a month later. */
async function transaction(o: { id: string; original: string; monthsAgo: number; signedMs?: number; product?: string; expires?: boolean; environment?: string }): Promise<string> {
  const purchaseMs = NOW - o.monthsAgo * 30 * DAY;
  return signer.signedTransaction({
    environment: o.environment ?? 'Production',
    bundleId: 'com.example.app',
    signedMs: o.signedMs ?? NOW,
    transactionId: o.id,
    originalTransactionId: o.original,
    productId: o.product ?? 'monthly',
    purchaseMs,
    ...(o.expires === false ? {} : { expiresMs: purchaseMs + 30 * DAY }),
  });
}

const row = (place: string, jws: string, user = 'u1'): RenewalRow => ({ place, app_user_id: user, jws });

describe('renewalDecision', () => {
  it('posts the newest renewal of a subscription and supersedes the others by it, whatever their signed dates', async () => {
    // signed in the reverse order of their purchases: the lookups' order says nothing about which is newest
    const rows = [
      row('a.csv#2', await transaction({ id: '11', original: '10', monthsAgo: 1, signedMs: NOW + 3 })),
      row('a.csv#9', await transaction({ id: '12', original: '10', monthsAgo: 0, signedMs: NOW + 1 })),
      row('b.csv#4', await transaction({ id: '10', original: '10', monthsAgo: 2, signedMs: NOW + 2 })),
      row('a.csv#5', await transaction({ id: '20', original: '20', monthsAgo: 5, product: 'lifetime', expires: false })),
    ];
    expect(rows.map((r) => renewalDecision(rows, r.place))).toEqual([
      { kind: 'superseded', by: { src: 'a.csv', line: 9 } },
      { kind: 'post' },
      { kind: 'superseded', by: { src: 'a.csv', line: 9 } },
      { kind: 'post' },
    ]);
  });

  it("compares a purchase only with the same user's rows of the same environment", async () => {
    const rows = [
      row('a.csv#2', await transaction({ id: '11', original: '10', monthsAgo: 1 })),
      row('a.csv#3', await transaction({ id: '12', original: '10', monthsAgo: 0 }), 'another user'),
      row('a.csv#4', await transaction({ id: '12', original: '10', monthsAgo: 0, environment: 'Sandbox' })),
    ];
    expect(rows.map((r) => renewalDecision(rows, r.place).kind)).toEqual(['post', 'post', 'post']);
  });

  it('breaks ties by the later place, so that of two equal transactions exactly one is posted', async () => {
    const jws = await transaction({ id: '31', original: '30', monthsAgo: 0 });
    const rows = [row('b.csv#2', jws), row('a.csv#7', jws), row('a.csv#10', jws)];
    expect(rows.map((r) => renewalDecision(rows, r.place))).toEqual([
      { kind: 'post' },
      { kind: 'superseded', by: { src: 'b.csv', line: 2 } },
      { kind: 'superseded', by: { src: 'b.csv', line: 2 } },
    ]);
  });

  it('posts a row whose signed transaction cannot be read, and one the group does not hold', async () => {
    const rows = [row('a.csv#2', 'eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln'), row('a.csv#3', await transaction({ id: '41', original: '40', monthsAgo: 0 }))];
    expect(renewalDecision(rows, 'a.csv#2')).toEqual({ kind: 'post' });
    expect(renewalDecision(rows, 'a.csv#99')).toEqual({ kind: 'post' });
  });

  it('splits a place at its last #', () => {
    expect(splitPlace('s3://b/x#1.csv#12')).toEqual({ src: 's3://b/x#1.csv', line: 12 });
  });
});

describe('LookupGroupCount', () => {
  it('sizes a group for each user with two or more rows, a token seen twice for one user counting once', () => {
    const count = new LookupGroupCount();
    count.add('alice', 'ios:1');
    count.add('bob', 'ios:2');
    count.add('alice', 'ios:3');
    count.add('carol', 'ios:4');
    count.add('carol', 'ios:4'); // a duplicate to the ledger: one row
    count.add('alice', 'ios:5');
    count.add('dave', 'ios:6');
    count.add('dave', 'ios:6');
    count.add('dave', 'ios:7');
    const sizes = count.finish();
    expect(['alice', 'bob', 'carol', 'dave', 'erin'].map((u) => sizes.sizeOf(u))).toEqual([3, undefined, undefined, 2, undefined]);
    expect(sizes.groups).toBe(2);
    expect(() => count.add('erin', 'ios:8')).toThrow(/after finish/);
  });

  it('finds every group among many users', () => {
    const count = new LookupGroupCount();
    for (let u = 0; u < 5000; u++) for (let r = 0; r <= u % 4; r++) count.add(`user-${u}`, `ios:${u}:${r}`);
    const sizes = count.finish();
    for (let u = 0; u < 5000; u++) expect(sizes.sizeOf(`user-${u}`)).toBe(u % 4 === 0 ? undefined : (u % 4) + 1);
  });
});
