// What the survey pass keeps of each App Store token for the sending pass (ingest/tokenFacts.ts): the same facts a
// fresh read gives (rules, queue order, purchase index), found by the row's place, and none for another token.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AppleEnvironment, AppleReading, ApplePurchase } from '../src/appstore/readToken.js';
import { TokenFactStore, factsOf } from '../src/ingest/tokenFacts.js';
import { tokenFingerprint } from '../src/ledger/rowIdentity.js';

const T0 = Date.UTC(2025, 0, 1);
const DAY = 86_400_000;

function reading(environment: AppleEnvironment, purchases: ApplePurchase[], plainToken = true): AppleReading {
  const ids = [...new Set(purchases.map((p) => p.originalTransactionId))];
  return {
    kind: 'receipt',
    environment,
    bundleId: 'com.example.app',
    dateMs: T0,
    purchases,
    originalTransactionIds: ids,
    plainToken,
    receipt: { bundleId: 'com.example.app', creationMs: T0, purchases: [] },
  };
}

const purchase = (orig: string, txn: string, expiresDay?: number, revoked = false): ApplePurchase => ({
  productId: 'p',
  transactionId: txn,
  originalTransactionId: orig,
  ...(expiresDay !== undefined ? { expiresMs: T0 + expiresDay * DAY } : {}),
  ...(revoked ? { revokedMs: T0 } : {}),
});

const NOWS = [T0 - 400 * DAY, T0, T0 + 5 * DAY, T0 + 30 * DAY, T0 + 400 * DAY];

/** The facts as plain values: what the sending pass reads of them, at several moments (of a rejected row, its problem only). */
function seen(facts: ReturnType<typeof factsOf> | undefined) {
  if (facts?.problem !== undefined) return { problem: facts.problem };
  return facts && { purchases: facts.purchases, active: NOWS.map((now) => facts.soonestActive(now)), plainToken: facts.plainToken };
}

describe('TokenFactStore', () => {
  it('gives back what a fresh read gives, by place, for read, unread and rejected tokens', () => {
    const store = new TokenFactStore();
    const cases: { line: number; token: string; reading: AppleReading; problem?: string }[] = [
      {
        line: 2,
        token: 'tok-a',
        reading: reading('production', [purchase('1000000000000001', '1000000000000001', 10), purchase('1000000000000001', '1000000000000002', 40), purchase('42', '42')]),
      },
      { line: 3, token: 'tok-b', reading: { kind: 'unread', why: 'not_base64', detail: 'x' } },
      { line: 5, token: 'tok-c', reading: reading('sandbox', [purchase('A-1', 'A-1', 3), purchase('A-1', 'A-2', 60, true), purchase('007', '007', 20)]) },
      { line: 7, token: 'tok-d', reading: reading('xcode', [purchase('0', '0', 15)]) },
      { line: 9, token: 'tok-e', reading: reading('sandbox', [purchase('5', '5', 15)]), problem: 'sandbox receipt, not sent with --skip-sandbox' },
      { line: 11, token: 'tok-f', reading: reading('production', []) },
      // a wrapped receipt (white space taken out to read it): its payload hash checks the token
      { line: 12, token: 'tok-g', reading: reading('sandbox', [purchase('8', '8')], false) },
    ];
    for (const c of cases) store.add({ source: 1, line: c.line }, c.token, c.reading, c.problem);
    for (const c of cases) expect(seen(store.factsAt({ source: 1, line: c.line }, c.token))).toEqual(seen(factsOf(c.reading, c.problem)));
    // a rejected row's problem is what the sending pass rejects it with
    expect(store.factsAt({ source: 1, line: 9 }, 'tok-e')?.problem).toBe('sandbox receipt, not sent with --skip-sandbox');
    expect(store.factsAt({ source: 1, line: 5 }, 'tok-c')?.purchases).toEqual([
      { environment: 'sandbox', originalTransactionId: 'A-1' },
      { environment: 'sandbox', originalTransactionId: '007' },
    ]);
    expect([2, 3, 5, 7, 12].map((line) => store.factsAt({ source: 1, line }, `tok-${'abcdefg'['2357'.indexOf(String(line))] ?? 'g'}`)?.plainToken)).toEqual([
      true,
      false,
      true,
      true,
      false,
    ]);
    // the revoked renewal (day 60) gives no time: A-1 runs to day 3, 007 to day 20
    expect(store.factsAt({ source: 1, line: 5 }, 'tok-c')?.soonestActive(T0 + 5 * DAY)).toBe(T0 + 20 * DAY);
  });

  it('keeps nothing for a place it was not given, another source, or another token at the place', () => {
    const store = new TokenFactStore();
    store.add({ source: 0, line: 2 }, 'x'.repeat(300), reading('production', [purchase('1', '1')]), undefined);
    expect(store.factsAt({ source: 0, line: 2 }, 'x'.repeat(300))?.purchases).toHaveLength(1);
    expect(store.factsAt({ source: 0, line: 3 }, 'x'.repeat(300))).toBeUndefined();
    expect(store.factsAt({ source: 1, line: 2 }, 'x'.repeat(300))).toBeUndefined();
    expect(store.factsAt({ source: 0, line: 2 }, `${'x'.repeat(299)}y`)).toBeUndefined();
    expect(store.factsAt({ source: 0, line: 2 }, 'x'.repeat(301))).toBeUndefined();
  });

  it("gives back each row's token fingerprint, when the survey gave it, so admission does not hash the token again", () => {
    const store = new TokenFactStore();
    const tokens = ['MIIT-a', 'MIIT-b', 'eyJ-c'];
    tokens.forEach((token, i) =>
      store.add({ source: 0, line: 2 + i }, token, reading('production', [purchase(`${i}`, `${i}`)]), i === 1 ? 'rejected' : undefined, tokenFingerprint('ios', token)),
    );
    store.trim();
    tokens.forEach((token, i) => expect(store.factsAt({ source: 0, line: 2 + i }, token)?.key).toEqual(tokenFingerprint('ios', token)));
    // another token at the place: no facts, so no key (the sending pass hashes what it read)
    expect(store.factsAt({ source: 0, line: 2 }, 'MIIT-x')).toBeUndefined();
    // a store given no fingerprints gives none back (not zeros)
    const keyless = new TokenFactStore();
    keyless.add({ source: 0, line: 2 }, 'MIIT-a', reading('production', []), undefined);
    expect(keyless.factsAt({ source: 0, line: 2 }, 'MIIT-a')).not.toHaveProperty('key');
  });

  it('finds rows added out of place order, over many sources', () => {
    const ids = fc.stringMatching(/^(?:[0-9]{1,17}|[A-Za-z0-9-]{1,12})$/);
    const purchaseArb = fc.record({
      orig: ids,
      txn: ids,
      expires: fc.option(fc.integer({ min: -500, max: 500 }), { nil: undefined }),
      revoked: fc.boolean(),
    });
    const rowArb = fc.record({
      source: fc.integer({ min: 0, max: 3 }),
      line: fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      environment: fc.constantFrom<AppleEnvironment>('production', 'sandbox', 'xcode'),
      purchases: fc.array(purchaseArb, { maxLength: 8 }),
      unread: fc.boolean(),
      plain: fc.boolean(),
      problem: fc.option(fc.constantFrom('p1', 'p2'), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(rowArb, { selector: (r) => `${r.source}:${r.line}`, maxLength: 60 }), (rows) => {
        const store = new TokenFactStore();
        const made = rows.map((r) => {
          const read: AppleReading = r.unread
            ? { kind: 'unread', why: 'not_receipt', detail: '' }
            : reading(
                r.environment,
                r.purchases.map((p) => purchase(p.orig, p.txn, p.expires, p.revoked)),
                r.plain,
              );
          const token = `token ${r.source} ${r.line}`;
          store.add({ source: r.source, line: r.line }, token, read, r.problem);
          return { place: { source: r.source, line: r.line }, token, read, problem: r.problem };
        });
        expect(store.size).toBe(rows.length);
        for (const m of made) expect(seen(store.factsAt(m.place, m.token))).toEqual(seen(factsOf(m.read, m.problem)));
        // trimmed (as the survey pass leaves it), the same; and a row added after still found
        store.trim();
        for (const m of made) expect(seen(store.factsAt(m.place, m.token))).toEqual(seen(factsOf(m.read, m.problem)));
        const late = reading('production', [purchase('77', '78', 9)]);
        store.add({ source: 9, line: 1 }, 'late', late, undefined);
        expect(seen(store.factsAt({ source: 9, line: 1 }, 'late'))).toEqual(seen(factsOf(late, undefined)));
      }),
    );
  });
});
