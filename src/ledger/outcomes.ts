// Outcomes: a row's final answer (succeeded or failed), kept as one compact record in the run's row table
// (ledger/rowRecord.ts), and read back for the reports, `retry` and `verify`. A failed row's record keeps what
// the ledger needs (status, HTTP status, RevenueCat code, reason, message, attempts, finish time, product, its
// place and user) and not its input: failed.csv and `retry` read that again from the row's source, by its place.
// An answer that replaces another (a retry's) moves the replaced record to the shard's history.
import type { Platform, ReceiptBody } from '../revenuecat/fields.js';
import type { Outcome } from '../types.js';
import { TIMELINE, timelineField } from '../redis/keys.js';
import { payloadHash, SHORT_HASH_BYTES, TOKEN_FINGERPRINT_BYTES, userHash } from './rowIdentity.js';
import {
  decodeAnswer,
  decodeHead,
  decodeHistoryEntry,
  dictionaryStrings,
  encodeAnswer,
  failureStrings,
  indexValue,
  isAnswer,
  keyBytes,
  keyText,
  RECORD,
  shardOfKey,
} from './rowRecord.js';
import { tableRecords } from './rowTable.js';
import { rememberPurchases, type PurchaseId } from './purchaseIndex.js';
import type { RunContext } from './runContext.js';
import type { RunNumbering } from './runNumbering.js';
import { findRecords, recordAnswer, reopenFailed } from './scriptCalls.js';
import { requestFields, type RecentError, type RequestSample } from './statistics.js';
import { timelineBucket } from './timeline.js';

export interface RecordOptions {
  /** an outcome already there wins (the safety nets) */
  onlyIfAbsent?: boolean;
  /** the request this answer came with, counted in the same call */
  request?: RequestSample;
  /** what was sent: a success enters the cross-run index with its payload hash (without it, as "changed") */
  sent?: { platform: Platform; body: ReceiptBody };
  /** the App Store purchases the row's token holds: a success enters them in the purchase index (ledger/purchaseIndex.ts) */
  purchases?: readonly PurchaseId[];
}

/** Where a row admitted into a run stands. */
export interface RowState {
  fp: string;
  status: 'queued' | 'skipped' | 'held' | 'superseded' | 'succeeded' | 'failed';
  src: string;
  line: number;
  app_user_id: string;
}

/** A failed row as `retry` selects it: its outcome, and its record as read, to hand back to `reopen`. */
export interface FailedRecord {
  outcome: Outcome;
  /** the record as read (base64): reopen re-opens the row only if it is still this one */
  stored: string;
}

const ROW_STATUS: Record<string, RowState['status']> = {
  [RECORD.queued]: 'queued',
  [RECORD.skipped]: 'skipped',
  [RECORD.held]: 'held',
  [RECORD.superseded]: 'superseded',
  [RECORD.succeeded]: 'succeeded',
  [RECORD.failed]: 'failed',
};

const ZERO_PAYLOAD = Buffer.alloc(SHORT_HASH_BYTES);
const SUPERSEDED = RECORD.superseded.charCodeAt(0);
const HELD = RECORD.held.charCodeAt(0);
const HISTORY_PAGE = 1000;

export class RunOutcomes {
  constructor(
    private readonly run: RunContext,
    private readonly numbering: RunNumbering,
  ) {}

  /**
   * Records a row's final answer, and the request that brought it, in one call (recordAnswer-7.lua). Recorded
   * even for a row the ledger has not seen admitted (a failover may lose an admission and keep its job); the
   * same call made twice records it once. Returns false when onlyIfAbsent found a final answer there.
   */
  async recordAnswer(outcome: Outcome, opts: RecordOptions = {}): Promise<boolean> {
    const key = keyBytes(outcome.fp);
    const s = shardOfKey(key);
    const n = this.numbering;
    const sourceNumber = await n.sourceId(outcome.src);
    await n.ensureCodes(dictionaryStrings(outcome));
    await n.ensureTextCodes(failureStrings(outcome));
    const record = encodeAnswer(outcome, { sourceNumber, base: await n.start(), code: n.code, textCode: n.textCode });
    const succeeded = outcome.status === 'succeeded';
    let index: Buffer | undefined;
    let error: string | undefined;
    if (succeeded) {
      const payload = opts.sent ? payloadHash(opts.sent.platform, opts.sent.body) : ZERO_PAYLOAD;
      index = indexValue(userHash(outcome.app_user_id), payload, await n.runNumber(), key.length > TOKEN_FINGERPRINT_BYTES ? (key[TOKEN_FINGERPRINT_BYTES] as number) : 0);
    } else {
      const recent: RecentError = { at: outcome.finished_at, src: outcome.src, line: outcome.line, reason: outcome.reason ?? 'unknown', message: outcome.message ?? '' };
      error = JSON.stringify(recent);
    }
    const written = await recordAnswer(this.run.redis, {
      shard: this.run.shard(s),
      index: this.run.index(s),
      key,
      record,
      onlyIfAbsent: opts.onlyIfAbsent ?? false,
      // the record kinds are the timeline's succeeded/failed kinds too (redis/keys.ts TIMELINE)
      timelineField: timelineField(timelineBucket(Date.parse(outcome.finished_at)), succeeded ? TIMELINE.succeeded : TIMELINE.failed),
      ...(error !== undefined ? { error } : {}),
      ...(index ? { indexValue: index } : {}),
      ...(opts.request ? { request: requestFields(opts.request) } : {}),
    });
    // after the answer, not with it: the purchase keys fall in other shards than the row's (a cluster's slots)
    if (succeeded && opts.purchases && opts.purchases.length > 0) {
      await rememberPurchases(this.run, opts.purchases, { userHash: userHash(outcome.app_user_id), runNumber: await n.runNumber(), key });
    }
    return written;
  }

  /** Every row record of the run, shard by shard, as [record key, record]. */
  private async *records(): AsyncIterable<[Buffer, Buffer]> {
    for (const k of this.run.shards) yield* tableRecords(this.run.redis, { state: k.counters, buckets: k.buckets, wide: k.wide });
  }

  /** Every final outcome, succeeded and failed, in ledger order (a failed one without its input, body or token). */
  async *outcomes(): AsyncIterable<Outcome> {
    const ctx = await this.numbering.decodeContext();
    for await (const [key, rec] of this.records()) if (isAnswer(rec)) yield decodeAnswer(key, rec, ctx);
  }

  /** Failed outcomes with their record as read, for a retry to select from and hand back to `reopen`. */
  async *failedRecords(): AsyncIterable<FailedRecord> {
    const ctx = await this.numbering.decodeContext();
    for await (const [key, rec] of this.records()) {
      if (rec[0] === RECORD.failed.charCodeAt(0)) yield { outcome: decodeAnswer(key, rec, ctx), stored: rec.toString('base64') };
    }
  }

  /** Makes failed rows pending again (reopenFailed-3.lua); returns how many were re-opened. */
  async reopen(records: readonly { fp: string; stored: string }[]): Promise<number> {
    if (records.length === 0) return 0;
    const byShard = new Map<number, { key: Buffer; record: Buffer }[]>();
    for (const r of records) {
      const key = keyBytes(r.fp);
      const s = shardOfKey(key);
      const rows = byShard.get(s) ?? [];
      rows.push({ key, record: Buffer.from(r.stored, 'base64') });
      byShard.set(s, rows);
    }
    const counts = await Promise.all([...byShard].map(([s, rows]) => reopenFailed(this.run.redis, { shard: this.run.shard(s), rows })));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Earlier outcomes of rows that were answered again (retries): shard by shard, each oldest first. */
  async *history(): AsyncIterable<Outcome> {
    const ctx = await this.numbering.decodeContext();
    const { redis } = this.run;
    for (const k of this.run.shards) {
      const total = await redis.llen(k.history);
      for (let start = 0; start < total; start += HISTORY_PAGE) {
        for (const entry of await redis.lrangeBuffer(k.history, start, start + HISTORY_PAGE - 1)) yield decodeHistoryEntry(entry, ctx);
      }
    }
  }

  /** The final outcome of the row with this record key, if it has one. */
  async outcome(fp: string): Promise<Outcome | undefined> {
    const key = keyBytes(fp);
    const [rec] = await findRecords(this.run.redis, { shard: this.run.shard(shardOfKey(key)), keys: [key] });
    if (!rec || !isAnswer(rec)) return undefined;
    return decodeAnswer(key, rec, await this.numbering.decodeContext());
  }

  /**
   * Whether each of these rows (record keys) has a final answer, or was superseded or held (a conflict by purchase)
   * after its lookup: never to be sent.
   */
  async finished(fps: readonly string[]): Promise<boolean[]> {
    const byShard = new Map<number, number[]>();
    const keys = fps.map(keyBytes);
    keys.forEach((key, i) => byShard.set(shardOfKey(key), [...(byShard.get(shardOfKey(key)) ?? []), i]));
    const out = new Array<boolean>(fps.length).fill(false);
    await Promise.all(
      [...byShard].map(async ([s, rows]) => {
        const recs = await findRecords(this.run.redis, { shard: this.run.shard(s), keys: rows.map((i) => keys[i] as Buffer) });
        rows.forEach((i, j) => {
          const rec = recs[j];
          out[i] = rec !== null && rec !== undefined && (isAnswer(rec) || rec[0] === SUPERSEDED || rec[0] === HELD);
        });
      }),
    );
    return out;
  }

  /** Every row admitted into the run (not rejected, not a duplicate): its key, place, user and where it stands. */
  async *rows(): AsyncIterable<RowState> {
    const sources = await this.numbering.sources();
    for await (const [key, rec] of this.records()) {
      const head = decodeHead(rec);
      yield {
        fp: keyText(key),
        status: ROW_STATUS[head.kind] ?? 'queued',
        src: sources[head.sourceNumber] ?? `source #${head.sourceNumber}`,
        line: head.line,
        app_user_id: head.appUserId,
      };
    }
  }

  /** Rows skipped because an earlier run had migrated them. */
  async *alreadyMigrated(): AsyncIterable<{ src: string; line: number; fp: string }> {
    const sources = await this.numbering.sources();
    for await (const [key, rec] of this.records()) {
      if (rec[0] !== RECORD.skipped.charCodeAt(0)) continue;
      const head = decodeHead(rec);
      yield { src: sources[head.sourceNumber] ?? `source #${head.sourceNumber}`, line: head.line, fp: keyText(key) };
    }
  }
}
