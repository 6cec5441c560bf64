// Synthetic App Store readings shaped like a real user base, for the scenarios that measure the survey's own
// bookkeeping (survey.mjs, tokenFacts.mjs) without parsing receipts: users with 1–4 receipts (each refresh stored),
// each a subscription's renewals so far (1–20 transactions) plus, for one user in five, a consumable kept by the
// first receipt only. Deterministic (a fixed LCG), so two runs measure the same rows.

const DAY = 86_400_000;
const T0 = Date.UTC(2023, 0, 1);

/**
 * Yields `rows` readings in file order: `{ line, appUserId, reading }`, the reading as readAppleToken gives it for
 * a receipt. `sandboxEvery`: one user in that many has sandbox receipts (0: none).
 */
export function* syntheticReadings(rows, { sandboxEvery = 0 } = {}) {
  let seed = 12345;
  const rand = (n) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  let made = 0;
  let txn = 2_000_000_000_000_000;
  for (let user = 0; made < rows; user++) {
    const renewals = 1 + rand(20);
    const orig = txn;
    const receipts = Math.min(1 + rand(4), rows - made);
    const consumable = rand(5) === 0 ? String(txn + 999_999) : undefined;
    const environment = sandboxEvery > 0 && rand(sandboxEvery) === 0 ? 'sandbox' : 'production';
    for (let r = 0; r < receipts; r++) {
      const upTo = Math.max(1, Math.round((renewals * (r + 1)) / receipts));
      const purchases = [];
      for (let k = 0; k < upTo; k++)
        purchases.push({ productId: 'monthly', transactionId: String(orig + k), originalTransactionId: String(orig), expiresMs: T0 + (k + 1) * 30 * DAY });
      if (consumable && r === 0) purchases.push({ productId: 'coins', transactionId: consumable, originalTransactionId: consumable });
      const originalTransactionIds = [...new Set(purchases.map((p) => p.originalTransactionId))];
      const reading = { kind: 'receipt', environment, bundleId: 'com.example.app', dateMs: T0 + upTo * 30 * DAY, purchases, originalTransactionIds };
      yield { line: 2 + made, appUserId: `user-${user}`, reading };
      made++;
    }
    txn += 1000;
  }
}
