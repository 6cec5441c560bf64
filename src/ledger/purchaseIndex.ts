// The cross-run purchase index: App Store purchases (environment + original transaction id) that a run migrated,
// and for whom. RevenueCat identifies an App Store purchase by its original transaction id and moves it to the
// App User ID that posts it last; a later run's receipt of ANOTHER user holding it would move it silently, so
// admission looks its purchases up here and treats such a row as a conflict (held by default), naming the
// earlier run's row. Sharded like the token index (the key's first byte), a table of listpack buckets.
//
// Entry: key = 10 bytes of sha256(environment, original transaction id); value = format byte · user hash (6) ·
// varint run number · the row's record key (10 or 11 bytes): about 19 bytes, ~30 with its key, per purchase.
import { createHash } from 'node:crypto';
import { SHARDS } from '../redis/keys.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { FORMAT, shardOfKey } from './rowRecord.js';
import { SHORT_HASH_BYTES, TOKEN_FINGERPRINT_BYTES } from './rowIdentity.js';
import type { RunContext } from './runContext.js';
import { findRecords, recordPurchases } from './scriptCalls.js';

/** An App Store purchase as the index knows it. */
export interface PurchaseId {
  environment: string;
  originalTransactionId: string;
}

export interface PurchaseEntry {
  userHash: Buffer;
  runNumber: number;
  /** the record key of the row that posted it */
  key: Buffer;
}

export function purchaseKey(p: PurchaseId): Buffer {
  return createHash('sha256').update(`apple\u0000${p.environment}\u0000${p.originalTransactionId}`).digest().subarray(0, TOKEN_FINGERPRINT_BYTES);
}

export function encodePurchaseEntry(e: PurchaseEntry): Buffer {
  return new ByteWriter().byte(FORMAT.index).bytes(e.userHash).varint(e.runNumber).bytes(e.key).toBuffer();
}

export function decodePurchaseEntry(value: Buffer): PurchaseEntry {
  const r = new ByteReader(value);
  const format = r.byte();
  if (format !== FORMAT.index) throw new Error(`a purchase index value of format ${format}: an index written by another version of rc-migrate`);
  const userHash = r.bytes(SHORT_HASH_BYTES);
  const runNumber = r.varint();
  return { userHash, runNumber, key: r.rest() };
}

/**
 * A conflict's other side when another user holds the purchase by the index (or by a claim of this run, in the same
 * form): 'P', the entry's varint length, the entry, the original transaction id (admit-4.lua, conflictQueued-3.lua;
 * read back by rowRecord.ts decodeConflict).
 */
export function purchaseConflictSide(entry: Buffer, originalTransactionId: string): Buffer {
  return Buffer.concat([Buffer.from('P', 'latin1'), new ByteWriter().varint(entry.length).toBuffer(), entry, Buffer.from(originalTransactionId, 'utf8')]);
}

/** Groups keys by shard. */
function byShard<T>(items: readonly T[], key: (item: T) => Buffer): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const item of items) {
    const s = shardOfKey(key(item)) % SHARDS;
    const list = out.get(s) ?? [];
    list.push(item);
    out.set(s, list);
  }
  return out;
}

/** Records that the row `entry.key` posted these purchases (its success). */
export async function rememberPurchases(run: RunContext, purchases: readonly PurchaseId[], entry: PurchaseEntry): Promise<void> {
  if (purchases.length === 0) return;
  const value = encodePurchaseEntry(entry);
  const keys = purchases.map(purchaseKey);
  await Promise.all([...byShard(keys, (k) => k)].map(([s, list]) => recordPurchases(run.redis, { index: run.index(s), value, keys: list })));
}

/** The index entries of these purchases (absent: never migrated), in order. */
export async function lookUpPurchases(run: RunContext, purchases: readonly PurchaseId[]): Promise<(PurchaseEntry | undefined)[]> {
  const keyed = purchases.map((p, i) => ({ i, key: purchaseKey(p) }));
  const out = new Array<PurchaseEntry | undefined>(purchases.length);
  await Promise.all(
    [...byShard(keyed, (k) => k.key)].map(async ([s, list]) => {
      const ix = run.index(s);
      const found = await findRecords(run.redis, { shard: { counters: ix.purchaseState, wide: ix.purchaseWide, buckets: ix.purchaseBuckets }, keys: list.map((k) => k.key) });
      for (const [j, value] of found.entries()) if (value) out[(list[j] as { i: number }).i] = decodePurchaseEntry(value);
    }),
  );
  return out;
}
