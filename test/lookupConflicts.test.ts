// Conflicts by purchase of rows given by a transaction id, against a real Redis (issue 17): the check after a
// lookup (claimPurchase-3.lua) against the cross-run purchase index and this run's claims, one winner among users
// checking one purchase at once; the hold or the conflict sent anyway (conflictQueued-3.lua), each counted once
// however often it is made, and read back as conflicts.csv reads it. The worker's way through the sandbox:
// test/appleLookup.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { RunLedger, type Conflict, type LookedUpRow, type PurchaseCheck } from '../src/ledger/runLedger.js';
import { decodePurchaseEntry } from '../src/ledger/purchaseIndex.js';
import { userHash } from '../src/ledger/rowIdentity.js';
import { keyBytes } from '../src/ledger/rowRecord.js';
import { outcomeFor } from './support/ledgerOutcomes.js';
import { redisScope } from './support/redis.js';

const scope = redisScope();
let redis: Redis;

beforeAll(() => {
  redis = scope.connect();
});
afterAll(() => scope.close());

const purchase = (otid: string) => [{ environment: 'production', originalTransactionId: otid }];

/** Rows given by a transaction id, admitted into `ledger`'s run from `src`, one per user, at lines 2, 3, … */
async function admitted(ledger: RunLedger, users: readonly string[], first = 2_000_000_000_100_000, src = 'tx.csv'): Promise<LookedUpRow[]> {
  const rows = users.map((user, i) => ({ src, line: i + 2, platform: 'ios' as const, body: { app_user_id: user, fetch_token: String(first + i) } }));
  const admissions = await ledger.admit(rows);
  return admissions.map((a, i) => {
    if (a.kind !== 'new') throw new Error(`not admitted: ${a.kind}`);
    return { fp: a.fp, src, line: i + 2, app_user_id: users[i] as string };
  });
}

async function all(ledger: RunLedger): Promise<Conflict[]> {
  const out: Conflict[] = [];
  for await (const c of ledger.conflicts()) out.push(c);
  return out.sort((a, b) => a.line - b.line);
}

describe('conflicts by purchase after a lookup', () => {
  it('of users checking one purchase at once, exactly one claims it; the others are told whose it is', async () => {
    const ledger = new RunLedger(redis, scope.prefix('lc-claim'), 'r1');
    await ledger.beginIngest(['tx.csv']);
    const users = Array.from({ length: 12 }, (_, i) => `user-${i}`);
    const rows = await admitted(ledger, users);
    const checks = await Promise.all(rows.map((r) => ledger.checkLookedUpPurchases(r, purchase('3000000000000001'))));
    const winners = rows.filter((_, i) => checks[i]?.kind === 'clear');
    expect(winners).toHaveLength(1);
    const winner = winners[0] as LookedUpRow;
    for (const c of checks.filter((c): c is Extract<PurchaseCheck, { kind: 'conflict' }> => c.kind === 'conflict')) {
      expect(c).toMatchObject({ by: 'claimed', originalTransactionId: '3000000000000001' });
      const entry = decodePurchaseEntry(c.entry);
      expect(entry.key.equals(keyBytes(winner.fp))).toBe(true);
      expect(entry.userHash.equals(userHash(winner.app_user_id))).toBe(true);
      expect(entry.runNumber).toBe(await ledger.runNumber());
    }
    // the winner's row checked again (a re-run), or another row of the same user: still its own
    expect(await ledger.checkLookedUpPurchases(winner, purchase('3000000000000001'))).toEqual({ kind: 'clear' });
    expect(await ledger.checkLookedUpPurchases({ ...winner, fp: rows.find((r) => r !== winner)!.fp }, purchase('3000000000000001'))).toEqual({ kind: 'clear' });
    // another environment's purchase of the same number is another purchase
    expect(
      await ledger.checkLookedUpPurchases(
        rows.find((r) => r !== winner)!,
        [{ environment: 'sandbox', originalTransactionId: '3000000000000001' }],
      ),
    ).toEqual({
      kind: 'clear',
    });
  });

  it('finds a purchase an earlier run migrated for another user in the cross-run index, and not for the same user', async () => {
    const prefix = scope.prefix('lc-index');
    const first = new RunLedger(redis, prefix, 'night-1');
    await first.beginIngest(['tx.csv']);
    const [alice] = await admitted(first, ['alice'], 2_000_000_000_200_000);
    const admittedRow = { src: 'tx.csv', line: 2, platform: 'ios' as const, body: { app_user_id: 'alice', fetch_token: '2000000000200000' } };
    await first.recordAnswer(outcomeFor(admittedRow, alice!.fp, 'succeeded'), { purchases: purchase('3000000000000002') });

    const second = new RunLedger(redis, prefix, 'night-2');
    await second.beginIngest(['tx2.csv']);
    const [bob, alice2] = await admitted(second, ['bob', 'alice'], 2_000_000_000_300_000, 'tx2.csv');
    const check = await second.checkLookedUpPurchases(bob!, purchase('3000000000000002'));
    expect(check).toMatchObject({ kind: 'conflict', by: 'indexed', originalTransactionId: '3000000000000002' });
    if (check.kind !== 'conflict') return;
    expect(decodePurchaseEntry(check.entry)).toMatchObject({ runNumber: await first.runNumber() });
    // alice's own row of a later run: hers (and claimed for her in that run)
    expect(await second.checkLookedUpPurchases(alice2!, purchase('3000000000000002'))).toEqual({ kind: 'clear' });

    // held: no longer pending, counted once however often recorded, finished, listed naming the earlier run's row
    expect(await second.recordLookedUpConflict(bob!, check, { hold: true, token: '2000000000300000' })).toBe(true);
    expect(await second.recordLookedUpConflict(bob!, check, { hold: true, token: '2000000000300000' })).toBe(false);
    expect(await second.state()).toMatchObject({ rows_read: 2, rows_queued: 1, rows_conflict: 1, rows_held: 1, rows_pending: 1 });
    expect(await second.finished([bob!.fp, alice2!.fp])).toEqual([true, false]);
    expect(await all(second)).toEqual([
      {
        src: 'tx2.csv',
        line: 2,
        app_user_id: 'bob',
        fp: bob!.fp,
        held: true,
        other: { run_id: 'night-1', src: 'tx.csv', line: 2, app_user_id: 'alice' },
        original_transaction_id: '3000000000000002',
      },
    ]);
    expect((await second.conflictTokens()).get('tx2.csv#2')).toMatch(/^2000…0000$/);
    // a resumed ingest reads the held row again: done, not queued again
    const again = await second.admit([{ src: 'tx2.csv', line: 2, platform: 'ios', body: { app_user_id: 'bob', fetch_token: '2000000000300000' } }]);
    expect(again.map((a) => a.kind)).toEqual(['done']);
  });

  it('sent anyway: listed and counted once as sent, the row still queued to be posted; the rule is the ingest’s', async () => {
    const ledger = new RunLedger(redis, scope.prefix('lc-send'), 'r3');
    await ledger.beginIngest(['tx.csv']);
    expect(await ledger.onConflict()).toBe('hold');
    await ledger.setOnConflict('send');
    expect(await ledger.onConflict()).toBe('send');
    const [carol, dave] = await admitted(ledger, ['carol', 'dave'], 2_000_000_000_400_000);
    expect(await ledger.checkLookedUpPurchases(carol!, purchase('3000000000000003'))).toEqual({ kind: 'clear' });
    const check = await ledger.checkLookedUpPurchases(dave!, purchase('3000000000000003'));
    if (check.kind !== 'conflict') throw new Error('no conflict');
    expect(await ledger.recordLookedUpConflict(dave!, check, { hold: false, token: '2000000000400001' })).toBe(true);
    expect(await ledger.recordLookedUpConflict(dave!, check, { hold: false, token: '2000000000400001' })).toBe(false);
    expect(await ledger.state()).toMatchObject({ rows_queued: 2, rows_conflict: 1, rows_held: 0, rows_pending: 2 });
    expect(await ledger.finished([dave!.fp])).toEqual([false]);
    expect(await all(ledger)).toEqual([
      expect.objectContaining({
        line: 3,
        app_user_id: 'dave',
        held: false,
        other: { run_id: 'r3', src: 'tx.csv', line: 2, app_user_id: 'carol' },
        original_transaction_id: '3000000000000003',
      }),
    ]);
  });
});
