// Admission: what the ledger decides for each row an ingest reads (queue it, or why not), and the rows it
// rejects or finds duplicated. Detection is in Redis (admit-4.lua): within the run by the row table, across runs
// by the cross-run index, so a 10-million-row file needs no memory in the process. Every call is idempotent:
// admitted again (a resumed ingest, a call sent twice), a row gets the same decision and is counted once.
import { writeTogether } from '../redis/corkedWrites.js';
import type { Platform, ReceiptBody } from '../revenuecat/fields.js';
import type { Duplicate, Rejection, Superseded, SupersededPlace } from '../types.js';
import { locationOf, META, SHARDS, TABLE, type RunShardKeys } from '../redis/keys.js';
import { payloadHash, tokenFingerprint, userHash } from './rowIdentity.js';
import { decodePlace, decodeSuperseded, encodePlace, encodeSuperseded, encodeUser, keyBytes, keyText, shardOfKey } from './rowRecord.js';
import type { RedisClient } from '../redis/connection.js';
import type { RunContext } from './runContext.js';
import { hashEntries, tableRecords } from './rowTable.js';
import type { RunNumbering } from './runNumbering.js';
import { encodePurchaseEntry, lookUpPurchases, purchaseConflictSide, type PurchaseId } from './purchaseIndex.js';
import { ADMIT_ANSWER, admitRows, recordOnce, recordSuperseded, supersedeQueued, type AdmitArgs } from './scriptCalls.js';

/**
 * What to do with a row read (admit). `fp` is the row's record key, its job id within the run.
 * - new: queue it; updated: queue it, an earlier run migrated its token for the same user with another payload;
 * - requeue: this very row was admitted before and has no outcome yet (queue again: a no-op if still queued);
 * - done: this very row was admitted before and is finished, skipped or held;
 * - migrated: an earlier run migrated the same token for the same user with the same payload (skipped);
 * - duplicate: same token and user as the row at `first` in this run;
 * - conflict: the token is another user's, in this run or an earlier one; held (not sent), or sent anyway.
 */
export type Admission =
  | { kind: 'new'; fp: string }
  | { kind: 'updated'; fp: string }
  | { kind: 'requeue'; fp: string }
  | { kind: 'done' }
  | { kind: 'migrated' }
  | { kind: 'duplicate'; first: string }
  | { kind: 'conflict'; held: true }
  | { kind: 'conflict'; held: false; fp: string };

/** What admit needs of a row. */
export interface AdmitRow {
  src: string;
  line: number;
  platform: Platform;
  body: ReceiptBody;
  /** another user's row of this run holds one of this row's App Store purchases (a conflict by purchase) */
  purchase?: PurchaseClaim;
  /** the row's App Store purchases, looked up in the cross-run purchase index (ledger/purchaseIndex.ts) */
  purchases?: readonly PurchaseId[];
  /**
   * tokenFingerprint(platform, body.fetch_token), when the caller computed it already (the ingester, for the row's
   * job id): hashing an App Store receipt of several KB again for every row cost the ingest as much as its admission
   */
  key?: Buffer;
  /** the token holds only characters JSON writes as they are, as the survey's read of it found (TokenFacts.plainToken) */
  plainToken?: boolean;
}

/** The row of another user that holds a purchase of this row, and the purchase's original transaction id. */
export interface PurchaseClaim {
  src: string;
  line: number;
  appUserId: string;
  originalTransactionId: string;
}

export interface AdmitOptions {
  /** send rows an earlier run migrated with the same payload */
  force?: boolean;
  /** a row whose token another user has: held back (default) or sent anyway */
  onConflict?: 'hold' | 'send';
}

export class RunAdmission {
  constructor(
    private readonly run: RunContext,
    private readonly numbering: RunNumbering,
  ) {}

  /** Decides what to do with each row read (see Admission), in one script call per shard the rows fall in. */
  async admit(rows: readonly AdmitRow[], opts: AdmitOptions = {}): Promise<Admission[]> {
    if (rows.length === 0) return [];
    const byShard = new Map<number, { rows: number[]; args: AdmitArgs[] }>();
    const earlier = await this.earlierPurchases(rows);
    for (const [i, row] of rows.entries()) {
      const key = row.key ?? tokenFingerprint(row.platform, row.body.fetch_token);
      const s = shardOfKey(key);
      let batch = byShard.get(s);
      if (!batch) {
        batch = { rows: [], args: [] };
        byShard.set(s, batch);
      }
      batch.rows.push(i);
      batch.args.push({
        key,
        place: encodePlace(await this.numbering.sourceId(row.src), row.line),
        user: encodeUser(row.body.app_user_id),
        userHash: userHash(row.body.app_user_id),
        payloadHash: payloadHash(row.platform, row.body, row.plainToken),
        purchase: row.purchase
          ? Buffer.concat([
              Buffer.from('p', 'latin1'),
              encodePlace(await this.numbering.sourceId(row.purchase.src), row.purchase.line),
              encodeUser(row.purchase.appUserId),
              Buffer.from(row.purchase.originalTransactionId, 'utf8'),
            ])
          : (earlier[i] as Buffer),
      });
    }
    const admissions = new Array<Admission>(rows.length);
    let sources: string[] | undefined;
    writeTogether(this.run.redis);
    await Promise.all(
      [...byShard].map(async ([s, batch]) => {
        const answers = await admitRows(this.run.redis, {
          shard: this.run.shard(s),
          index: this.run.index(s),
          force: opts.force ?? false,
          onConflict: opts.onConflict ?? 'hold',
          rows: batch.args,
        });
        for (const [j, { code, rest }] of answers.entries()) {
          const i = batch.rows[j] as number;
          switch (code) {
            case ADMIT_ANSWER.new:
              admissions[i] = { kind: 'new', fp: keyText(rest) };
              break;
            case ADMIT_ANSWER.updated:
              admissions[i] = { kind: 'updated', fp: keyText(rest) };
              break;
            case ADMIT_ANSWER.requeue:
              admissions[i] = { kind: 'requeue', fp: keyText(rest) };
              break;
            case ADMIT_ANSWER.done:
              admissions[i] = { kind: 'done' };
              break;
            case ADMIT_ANSWER.migrated:
              admissions[i] = { kind: 'migrated' };
              break;
            case ADMIT_ANSWER.duplicate:
              sources ??= await this.numbering.sources();
              admissions[i] = { kind: 'duplicate', first: await this.numbering.placeName(rest, sources) };
              break;
            case ADMIT_ANSWER.conflictHeld:
              admissions[i] = { kind: 'conflict', held: true };
              break;
            case ADMIT_ANSWER.conflictSent:
              admissions[i] = { kind: 'conflict', held: false, fp: keyText(rest) };
              break;
          }
        }
      }),
    );
    return admissions;
  }

  /**
   * For each row, the conflict argument of an App Store purchase it holds that an earlier run migrated for another
   * user ('P', the index entry, the original transaction id), or empty. One lookup for the whole chunk (a script
   * call per shard its purchases fall in): a call per row, awaited in turn, made an ingest of App Store rows wait
   * on a round trip per row.
   */
  private async earlierPurchases(rows: readonly AdmitRow[]): Promise<Buffer[]> {
    const out: Buffer[] = rows.map(() => Buffer.alloc(0));
    const wanted: { row: number; purchase: PurchaseId }[] = [];
    for (const [i, row] of rows.entries()) if (!row.purchase) for (const purchase of row.purchases ?? []) wanted.push({ row: i, purchase });
    if (wanted.length === 0) return out;
    const entries = await lookUpPurchases(
      this.run,
      wanted.map((w) => w.purchase),
    );
    const owners = new Map<number, Buffer>();
    for (const [j, entry] of entries.entries()) {
      const { row: i, purchase } = wanted[j] as { row: number; purchase: PurchaseId };
      // the row's first purchase (in its order) that another user's row migrated
      if (!entry || (out[i] as Buffer).length > 0) continue;
      let own = owners.get(i);
      if (!own) owners.set(i, (own = userHash((rows[i] as AdmitRow).body.app_user_id)));
      if (entry.userHash.equals(own)) continue;
      out[i] = purchaseConflictSide(encodePurchaseEntry(entry), purchase.originalTransactionId);
    }
    return out;
  }

  /** Records a rejected row once per place in the input; returns whether it was new. */
  async reject(rejection: Rejection): Promise<boolean> {
    const k = this.run.shard(rejection.line % SHARDS);
    const location = locationOf(rejection.src, rejection.line);
    return recordOnce(this.run.redis, { records: k.rejected, counters: k.counters, location, json: JSON.stringify(rejection), counter: META.rowsRejected });
  }

  /** Records a duplicate row once per place in the input; returns whether it was new. */
  async duplicate(dup: Duplicate): Promise<boolean> {
    const k = this.run.shard(dup.line % SHARDS);
    const location = locationOf(dup.src, dup.line);
    return recordOnce(this.run.redis, { records: k.duplicates, counters: k.counters, location, json: JSON.stringify(dup), counter: META.rowsDuplicate });
  }

  /**
   * Records superseded App Store rows, each once per place (its place → the carrier's place, packed: rowRecord.ts
   * encodeSuperseded; its user is read again from its source when listed), in one script call per shard they fall
   * in; returns how many were new.
   */
  async supersede(rows: readonly Superseded[]): Promise<number> {
    // a chunk's rows name a source or two: each number asked once
    const names = [...new Set(rows.flatMap((row) => [row.src, row.by.src]))];
    const numbers = new Map(await Promise.all(names.map(async (name) => [name, await this.numbering.sourceId(name)] as const)));
    const byShard = new Map<number, { place: Buffer; record: Buffer }[]>();
    for (const row of rows) {
      const own = numbers.get(row.src) as number;
      const by = numbers.get(row.by.src) as number;
      const s = row.line % SHARDS;
      const list = byShard.get(s) ?? [];
      list.push({ place: encodePlace(own, row.line), record: encodeSuperseded({ sourceNumber: by, line: row.by.line }) });
      byShard.set(s, list);
    }
    // the shards' calls leave in one write
    writeTogether(this.run.redis);
    const added = await Promise.all([...byShard].map(([s, list]) => recordSuperseded(this.run.redis, { shard: this.run.shard(s), rows: list })));
    return added.reduce((sum, n) => sum + n, 0);
  }

  /**
   * Records an admitted row (record key `fp`) given by a transaction id as superseded after its lookup: no longer
   * queued, listed with the rows the survey superseded (in its own shard's table: the place is the key either way,
   * and a place is superseded one way only). Returns whether it was new.
   */
  async supersedeAdmitted(fp: string, row: Superseded): Promise<boolean> {
    const key = keyBytes(fp);
    const [own, by] = await Promise.all([this.numbering.sourceId(row.src), this.numbering.sourceId(row.by.src)]);
    return supersedeQueued(this.run.redis, {
      shard: this.run.shard(shardOfKey(key)),
      key,
      place: encodePlace(own, row.line),
      user: encodeUser(row.app_user_id),
      record: encodeSuperseded({ sourceNumber: by, line: row.by.line }),
    });
  }

  /**
   * Every superseded row, with the place of the receipt that carries it; not its user, which the ledger does not
   * keep (superseded.csv reads it again from the row's source: reports/supersededCsv.ts).
   */
  async *superseded(): AsyncIterable<SupersededPlace> {
    const names = await this.numbering.sources();
    const name = (n: number): string => names[n] ?? `source #${n}`;
    for (const k of this.run.shards) {
      await checkSupersededTable(this.run.redis, k.superseded);
      for await (const [place, value] of tableRecords(this.run.redis, { state: k.superseded, buckets: k.supersededBuckets, wide: k.supersededWide })) {
        const own = decodePlace(place);
        const { by } = decodeSuperseded(value);
        yield { src: name(own.sourceNumber), line: own.line, by: { src: name(by.sourceNumber), line: by.line } };
      }
    }
  }

  rejections(): AsyncIterable<Rejection> {
    return this.scanJson<Rejection>((k) => k.rejected);
  }

  duplicates(): AsyncIterable<Duplicate> {
    return this.scanJson<Duplicate>((k) => k.duplicates);
  }

  private async *scanJson<T>(key: (k: RunShardKeys) => string): AsyncIterable<T> {
    for (const k of this.run.shards) for await (const [, raw] of hashEntries(this.run.redis, key(k))) yield JSON.parse(raw.toString('utf8')) as T;
  }
}

/**
 * The superseded rows' table state holds the table's fields (TABLE) and nothing else. Before their records were
 * packed (rowRecord.ts encodeSuperseded) the same key was a plain hash of `<source>:<line>` → text: a ledger
 * written so is refused by name rather than read as having no superseded rows.
 */
async function checkSupersededTable(redis: RedisClient, state: string): Promise<void> {
  const [fields, records] = await Promise.all([redis.hlen(state), redis.hget(state, TABLE.records)]);
  if (fields === 0 || (records !== null && fields === Object.keys(TABLE).length)) return;
  throw new Error(`${state}: superseded rows of an older format, this version reads the packed form: a ledger written by another version of rc-migrate`);
}
