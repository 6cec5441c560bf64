// The first pass over a run's App Store rows (ingest/receiptSurvey.ts): which receipts are superseded by a newer
// one of the same user, which rows share a purchase with another user's, and the plan's counts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReceiptSurvey, decimalId, type SurveyPurchase, type SurveyReading, type SurveyRow } from '../src/ingest/receiptSurvey.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2024, 0, 1);

const sub = (orig: string, txn: string, month: number): SurveyPurchase => ({ transactionId: txn, originalTransactionId: orig, expiresMs: T0 + (month + 1) * 30 * DAY });
const once = (txn: string): SurveyPurchase => ({ transactionId: txn, originalTransactionId: txn });

function receipt(dateDay: number, purchases: SurveyPurchase[], extra: Partial<SurveyReading> = {}): SurveyReading {
  return { environment: 'production', bundleId: 'com.example.app', dateMs: T0 + dateDay * DAY, purchases, ...extra };
}

function row(line: number, appUserId: string, reading: SurveyReading | undefined, source = 0): SurveyRow {
  return { place: { source, line }, appUserId, reading };
}

function survey(rows: SurveyRow[]) {
  const s = new ReceiptSurvey();
  for (const r of rows) s.add(r);
  return s.finish();
}

// A user's subscription over three receipts: each newer one lists every renewal of the older ones.
const r1 = receipt(0, [sub('100', '100', 0)]);
const r2 = receipt(31, [sub('100', '100', 0), sub('100', '101', 1)]);
const r3 = receipt(62, [sub('100', '100', 0), sub('100', '101', 1), sub('100', '102', 2)]);

describe('superseded receipts', () => {
  it('sends only the newest of a user three receipts, in time order', () => {
    const result = survey([row(2, 'u', r1), row(3, 'u', r2), row(4, 'u', r3)]);
    expect(result.decisionFor({ source: 0, line: 4 })).toEqual({ kind: 'send' });
    expect(result.decisionFor({ source: 0, line: 2 })).toEqual({ kind: 'superseded', by: { source: 0, line: 4 } });
    expect(result.decisionFor({ source: 0, line: 3 })).toEqual({ kind: 'superseded', by: { source: 0, line: 4 } });
    expect(result.counts.superseded).toBe(2);
  });

  it('decides the same out of time order and across sources', () => {
    const result = survey([row(9, 'u', r3, 0), row(2, 'u', r1, 1), row(5, 'u', r2, 0)]);
    expect(result.decisionFor({ source: 0, line: 9 })).toEqual({ kind: 'send' });
    expect(result.decisionFor({ source: 1, line: 2 })).toEqual({ kind: 'superseded', by: { source: 0, line: 9 } });
    expect(result.decisionFor({ source: 0, line: 5 })).toEqual({ kind: 'superseded', by: { source: 0, line: 9 } });
  });

  it('sends an older receipt that holds a consumable the newer one dropped', () => {
    const old = receipt(0, [once('500'), sub('100', '100', 0)]);
    const newer = receipt(40, [sub('100', '100', 0), sub('100', '101', 1)]);
    const result = survey([row(2, 'u', old), row(3, 'u', newer)]);
    expect(result.decisionFor({ source: 0, line: 2 })).toEqual({ kind: 'send' });
    expect(result.decisionFor({ source: 0, line: 3 })).toEqual({ kind: 'send' });
    expect(result.counts.superseded).toBe(0);
  });

  it('sends the newest of several signed transactions of one subscription', () => {
    const jws = (txn: string, month: number): SurveyReading => receipt(month * 30, [sub('700', txn, month)], {});
    const result = survey([row(2, 'u', jws('701', 1)), row(3, 'u', jws('703', 3)), row(4, 'u', jws('702', 2))]);
    expect(result.decisionFor({ source: 0, line: 3 })).toEqual({ kind: 'send' });
    expect(result.decisionFor({ source: 0, line: 2 })).toEqual({ kind: 'superseded', by: { source: 0, line: 3 } });
    expect(result.decisionFor({ source: 0, line: 4 })).toEqual({ kind: 'superseded', by: { source: 0, line: 3 } });
  });

  it('an app receipt carrying a signed transaction supersedes it, not the other way round', () => {
    const jws = receipt(10, [sub('100', '101', 1)]);
    const app = receipt(62, [sub('100', '100', 0), sub('100', '101', 1), sub('100', '102', 2)]);
    const result = survey([row(2, 'u', jws), row(3, 'u', app)]);
    expect(result.decisionFor({ source: 0, line: 2 })).toEqual({ kind: 'superseded', by: { source: 0, line: 3 } });
    expect(result.decisionFor({ source: 0, line: 3 })).toEqual({ kind: 'send' });
  });

  it('never lets one user receipt supersede another user one', () => {
    const result = survey([row(2, 'a', r1), row(3, 'b', r3)]);
    expect(result.decisionFor({ source: 0, line: 2 })).toEqual({ kind: 'send' });
    expect(result.counts.superseded).toBe(0);
  });

  it('of two equal receipts of one user, sends exactly one (the later row)', () => {
    const result = survey([row(2, 'u', r2), row(3, 'u', { ...r2 })]);
    expect(result.decisionFor({ source: 0, line: 3 })).toEqual({ kind: 'send' });
    expect(result.decisionFor({ source: 0, line: 2 })).toEqual({ kind: 'superseded', by: { source: 0, line: 3 } });
  });

  it('keeps only the first of rows with the same token and user (the ledger reports the rest as duplicates)', () => {
    const s = new ReceiptSurvey();
    s.add({ ...row(2, 'u', r2), tokenKey: 'T' });
    s.add({ ...row(3, 'u', r2), tokenKey: 'T' });
    const result = s.finish();
    expect(result.decisionFor({ source: 0, line: 2 })).toEqual({ kind: 'send' });
    expect(result.counts.read).toBe(1);
  });
});

describe('conflicts by purchase', () => {
  it('names the shared original transaction id and the owner row', () => {
    // Two accounts on one Apple ID: different receipts (bytes), one purchase.
    const a = receipt(0, [sub('1000000692878476', '1000000692878476', 0)]);
    const b = receipt(40, [sub('1000000692878476', '1000000692878476', 0), sub('1000000692878476', '1000000699999999', 1)]);
    const result = survey([row(2, 'alice', a), row(7, 'bob', b)]);
    expect(result.conflicts).toEqual([
      { place: { source: 0, line: 7 }, appUserId: 'bob', originalTransactionId: '1000000692878476', other: { place: { source: 0, line: 2 }, appUserId: 'alice' } },
    ]);
    expect(result.conflictAt({ source: 0, line: 7 })?.originalTransactionId).toBe('1000000692878476');
    expect(result.conflictAt({ source: 0, line: 2 })).toBeUndefined();
  });

  it('owns purchases by the rows that are sent: a superseded row neither owns nor conflicts', () => {
    // bob's old receipt comes first in the file but is superseded by his newer one, after alice's row.
    const shared = sub('42', '42', 0);
    const result = survey([row(3, 'bob', receipt(0, [shared])), row(5, 'alice', receipt(10, [shared])), row(10, 'bob', receipt(40, [shared, sub('42', '43', 1)]))]);
    expect(result.decisionFor({ source: 0, line: 3 }).kind).toBe('superseded');
    expect(result.conflicts.map((c) => [c.place.line, c.appUserId, c.other.appUserId])).toEqual([[10, 'bob', 'alice']]);
  });

  it('keeps ids that are not plain numbers exactly', () => {
    const result = survey([
      row(2, 'a', receipt(0, [once('tx-α')])),
      row(3, 'b', receipt(0, [once('tx-α')])),
      row(4, 'c', receipt(0, [once('0012')])),
      row(5, 'd', receipt(0, [once('0012')])),
    ]);
    expect(result.conflicts.map((c) => c.originalTransactionId)).toEqual(['tx-α', '0012']);
  });
});

describe('counts', () => {
  it('counts read, unread, sandbox, distinct purchases, superseded and bundles', () => {
    const result = survey([
      row(2, 'u', r1),
      row(3, 'u', r3),
      row(4, 'v', receipt(0, [once('900')], { environment: 'sandbox' })),
      row(5, 'w', receipt(0, [once('901')], { environment: 'xcode', bundleId: 'com.example.other' })),
      row(6, 'x', undefined),
    ]);
    expect(result.counts).toEqual({
      read: 4,
      unread: 1,
      sandbox: 2,
      purchases: 3,
      superseded: 1,
      bundles: { 'com.example.app': 3, 'com.example.other': 1 },
    });
  });
});

describe('order independence', () => {
  it('gives every row the same decision whatever order the rows come in', () => {
    const purchase = fc.record({ orig: fc.integer({ min: 1, max: 6 }), renewal: fc.integer({ min: 0, max: 3 }), consumable: fc.boolean() });
    const arbRow = fc.record({ user: fc.constantFrom('a', 'b', 'c'), day: fc.integer({ min: 0, max: 5 }), purchases: fc.array(purchase, { minLength: 1, maxLength: 4 }) });
    fc.assert(
      fc.property(fc.array(arbRow, { minLength: 1, maxLength: 12 }), fc.integer(), (spec, seed) => {
        const rows = spec.map((r, i) =>
          row(
            i + 2,
            r.user,
            receipt(
              r.day,
              r.purchases.map((p) => (p.consumable ? once(`c${p.orig}`) : sub(String(p.orig), `${p.orig}-${p.renewal}`, p.renewal))),
            ),
          ),
        );
        const shuffled = [...rows];
        let state = seed >>> 0;
        for (let i = shuffled.length - 1; i > 0; i--) {
          state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
          const j = state % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j] as SurveyRow, shuffled[i] as SurveyRow];
        }
        const a = survey(rows);
        const b = survey(shuffled);
        for (const r of rows) {
          expect(b.decisionFor(r.place)).toEqual(a.decisionFor(r.place));
          const by = a.decisionFor(r.place);
          // the carrier is itself sent
          if (by.kind === 'superseded') expect(a.decisionFor(by.by)).toEqual({ kind: 'send' });
        }
        expect(b.conflicts).toEqual(a.conflicts);
        expect(b.counts).toEqual(a.counts);
      }),
      { seed: 15, numRuns: 300 },
    );
  });
});

describe('environments', () => {
  it('compares ids within an environment and leaves Xcode testing out of conflicts', () => {
    const result = survey([
      row(2, 'a', receipt(0, [once('77')])),
      row(3, 'b', receipt(0, [once('77')], { environment: 'sandbox' })),
      row(4, 'c', receipt(0, [once('0')], { environment: 'xcode' })),
      row(5, 'd', receipt(0, [once('0')], { environment: 'xcode' })),
    ]);
    expect(result.conflicts).toEqual([]);
    expect(result.counts.purchases).toBe(3);
  });
});

describe('decimalId', () => {
  // the definition it stands for: a canonical decimal (no sign, no leading zero) that is a safe integer
  const reference = (id: string): number => (/^(?:0|[1-9][0-9]{0,15})$/.test(id) && Number.isSafeInteger(Number(id)) ? Number(id) : -1);

  it('keys canonical decimals below 2^53 by their value and nothing else', () => {
    const cases = [
      '0',
      '7',
      '1000000692878476',
      '9007199254740991',
      '9007199254740992',
      '9007199254740993',
      '9999999999999999',
      '12345678901234567',
      '',
      '00',
      '01',
      '-1',
      '+1',
      '1e3',
      '1.0',
      ' 1',
      '1 ',
      '١٢',
      'abc',
      '2000000000000001x',
    ];
    for (const id of cases) expect([id, decimalId(id)]).toEqual([id, reference(id)]);
    expect(decimalId('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('agrees with the definition on random ids', () => {
    const digits = fc.string({ unit: fc.constantFrom('0', '1', '5', '9', '8', '/', ':', 'a', ' '), minLength: 0, maxLength: 18 });
    const near = fc.bigInt({ min: 9_007_199_254_700_000n, max: 9_007_199_254_800_000n }).map(String);
    fc.assert(
      fc.property(fc.oneof(digits, near, fc.string()), (id) => decimalId(id) === reference(id)),
      { seed: 17, numRuns: 3000 },
    );
  });
});
