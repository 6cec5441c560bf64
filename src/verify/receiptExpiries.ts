// The subscriptions each succeeded App Store row's receipt holds, and when each ends, for `verify` to hold
// RevenueCat's expiries against (state/compareState.ts, compareReceiptExpiries).
//
// The ledger keeps no receipt and no expiry from one: the rows are read again from their sources, as failed.csv
// and `retry` read failed rows (ingest/reread.ts: a source changed since the run read it is refused, and each row's
// token must still be the one the ledger holds). That costs the ledger nothing per row, and verify, which reads
// the API at a few users a second, does not notice a reading that keeps up with thousands of rows a second. A
// row that cannot be read again (its source changed, or is not reachable from this machine) keeps every other
// check; only the receipt comparison is left out, and counted.
import { APPLE_PLATFORMS } from '../appstore/lookup/transactionLookup.js';
import { productExpiries, type ProductExpiry } from '../appstore/productExpiries.js';
import type { RowPlace, RunSources } from '../ingest/reread.js';
import type { Outcome } from '../types.js';

export type ReceiptRow = Pick<Outcome, 'src' | 'line' | 'fp' | 'platform'>;

export interface ReceiptExpiries {
  /**
   * By source, then line (no string per row: a run can have millions): the subscriptions the row's token holds and
   * when each ends; only rows whose token was read. receiptOf looks a row up.
   */
  bySource: Map<string, Map<number, ProductExpiry[]>>;
  /** App Store rows whose token was read again and read: their subscriptions are compared */
  read: number;
  /** rows read again whose token this tool cannot read (an iOS 6 receipt, a row that held only a transaction id) */
  unread: number;
  /** rows that could not be read again: their source changed, cannot be reached from here, or no longer holds the row */
  unavailable: number;
  /** why the first of those could not be read again */
  unavailableReason?: string;
}

/** What a row's token says its subscriptions end, when it was read again and read. */
export function receiptOf(expiries: ReceiptExpiries, row: Pick<Outcome, 'src' | 'line'>): ProductExpiry[] | undefined {
  return expiries.bySource.get(row.src)?.get(row.line);
}

export function isAppStoreRow(row: Pick<Outcome, 'platform'>): boolean {
  return APPLE_PLATFORMS.includes(row.platform);
}

/** The place reread checks a row's token against (a second user's row of a token included: ingest/reread.ts). */
function placeOf(row: ReceiptRow): RowPlace {
  return { src: row.src, line: row.line, fp: row.fp };
}

/** Reads the App Store rows among `rows` again, source by source, and what their tokens say each subscription ends. */
export async function readReceiptExpiries(sources: Pick<RunSources, 'read'>, rows: Iterable<ReceiptRow>): Promise<ReceiptExpiries> {
  const out: ReceiptExpiries = { bySource: new Map(), read: 0, unread: 0, unavailable: 0 };
  // one string per product id, not one per row
  const productIds = new Map<string, string>();
  const bySource = new Map<string, RowPlace[]>();
  for (const row of rows) {
    if (!isAppStoreRow(row)) continue;
    const places = bySource.get(row.src);
    if (places) places.push(placeOf(row));
    else bySource.set(row.src, [placeOf(row)]);
  }
  const unavailable = (count: number, reason: string): void => {
    out.unavailable += count;
    out.unavailableReason ??= reason;
  };
  for (const [src, places] of bySource) {
    const byLine = new Map<number, ProductExpiry[]>();
    out.bySource.set(src, byLine);
    let seen = 0;
    try {
      for await (const r of sources.read(src, places)) {
        seen++;
        if (!r.ok) {
          unavailable(1, r.reason);
          continue;
        }
        const expiries = productExpiries(r.body.fetch_token);
        if (expiries === undefined) {
          out.unread++;
          continue;
        }
        out.read++;
        byLine.set(
          r.place.line,
          expiries.map((e) => {
            let id = productIds.get(e.productId);
            if (id === undefined) productIds.set(e.productId, (id = e.productId));
            return { productId: id, expiresMs: e.expiresMs };
          }),
        );
      }
    } catch (err) {
      // the source changed, or cannot be reached from here: its rows not yet read keep every other check
      unavailable(places.length - seen, err instanceof Error ? err.message : String(err));
    }
  }
  return out;
}
