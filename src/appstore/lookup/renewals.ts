// What a row given by a transaction id does once every row of its lookup group has a result (ledger/lookupGroups.ts):
// RevenueCat identifies an App Store purchase by its original transaction id, so of several transactions of one
// purchase for one user (a subscription's renewals, a restore) only the newest is posted; the others are
// superseded by it. Every row of the group decides alone from the same set, so the rule must give the same answer
// to each: the newest is the latest expiry, then the latest purchase date, then the later place (source name, then
// line), never the signed date (a looked-up transaction is signed when it is looked up, not when it was bought).
// Rows of other purchases, rows whose lookup failed and rows the ingest did not queue take no part.
import { readAppleToken } from '../readToken.js';

/** A row of the group with its lookup's result: its place (`<source>#<line>`), user and signed transaction. */
export interface RenewalRow {
  place: string;
  app_user_id: string;
  jws: string;
}

export type RenewalDecision = { kind: 'post' } | { kind: 'superseded'; by: { src: string; line: number } };

interface Purchase {
  place: string;
  /** user, environment and original transaction id: the purchase as RevenueCat knows it */
  identity: string;
  expiresMs: number;
  purchaseMs: number;
}

/** A place `<source>#<line>` (locationOf) back to its parts; the source may hold a '#' itself. */
export function splitPlace(place: string): { src: string; line: number } {
  const at = place.lastIndexOf('#');
  return { src: place.slice(0, at), line: Number(place.slice(at + 1)) };
}

function purchaseOf(row: RenewalRow): Purchase | undefined {
  const reading = readAppleToken(row.jws);
  if (reading.kind !== 'signed_transaction') return undefined;
  const [p] = reading.purchases;
  if (!p) return undefined;
  return {
    place: row.place,
    identity: `${row.app_user_id}\u0000${reading.environment}\u0000${p.originalTransactionId}`,
    expiresMs: p.expiresMs ?? -1,
    purchaseMs: p.purchaseMs ?? -1,
  };
}

/** > 0 when a is newer than b. */
function newer(a: Purchase, b: Purchase): number {
  if (a.expiresMs !== b.expiresMs) return a.expiresMs - b.expiresMs;
  if (a.purchaseMs !== b.purchaseMs) return a.purchaseMs - b.purchaseMs;
  const pa = splitPlace(a.place);
  const pb = splitPlace(b.place);
  if (pa.src !== pb.src) return pa.src < pb.src ? -1 : 1;
  return pa.line - pb.line;
}

/** The row at `own`: posted, or superseded by the newest row of the group holding the same purchase. */
export function renewalDecision(rows: readonly RenewalRow[], own: string): RenewalDecision {
  const mine = rows.find((r) => r.place === own);
  const purchase = mine ? purchaseOf(mine) : undefined;
  // a signed transaction that cannot be read is posted as it is: RevenueCat says what it is
  if (!purchase) return { kind: 'post' };
  let newest = purchase;
  for (const row of rows) {
    if (row.place === own) continue;
    const other = purchaseOf(row);
    if (other && other.identity === purchase.identity && newer(other, newest) > 0) newest = other;
  }
  return newest === purchase ? { kind: 'post' } : { kind: 'superseded', by: splitPlace(newest.place) };
}
