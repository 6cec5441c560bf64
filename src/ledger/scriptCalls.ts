// One typed function per Lua script of the ledger (src/redis/scripts/*.lua), with named arguments: the only place
// that knows in which order a script takes its KEYS and ARGV, and what its answer codes mean. The codes are
// declared here once; each script names them in constants annotated with the name below (`-- ADMIT_ANSWER.new`),
// which test/redisScripts.test.ts checks against these values.
import type { RedisClient } from '../redis/connection.js';
import type { IndexShardKeys, RunKeys, RunShardKeys } from '../redis/keys.js';
import { callScript, callScriptBuffer } from '../redis/scripts.js';

/** The first byte of each row's answer from admit-4.lua (what follows it: see AdmitAnswer). */
export const ADMIT_ANSWER = {
  /** new: queue it (the row's key follows) */
  new: 'n',
  /** an earlier run migrated the token for the same user with another payload: queue it (key follows) */
  updated: 'u',
  /** this very row was admitted before and has no outcome yet: queue again (key follows) */
  requeue: 'q',
  /** this very row was admitted before and is finished, skipped or held */
  done: 'd',
  /** an earlier run migrated the same token for the same user with the same payload: skipped */
  migrated: 'm',
  /** same token and user as a row of this run (that row's place follows) */
  duplicate: 'D',
  /** the token is another user's: held, not sent (the row's key follows, when it got one) */
  conflictHeld: 'C',
  /** the token is another user's: sent anyway (key follows) */
  conflictSent: 'S',
} as const;
export type AdmitAnswerCode = (typeof ADMIT_ANSWER)[keyof typeof ADMIT_ANSWER];

/** One row's answer from admit: its code and the bytes after it (a record key, a place, or nothing). */
export interface AdmitAnswer {
  code: AdmitAnswerCode;
  rest: Buffer;
}

const ADMIT_CODES = new Set<string>(Object.values(ADMIT_ANSWER));

/** What admit needs of a row, in its stored forms (ledger/rowRecord.ts, ledger/rowIdentity.ts). */
export interface AdmitArgs {
  key: Buffer;
  place: Buffer;
  user: Buffer;
  userHash: Buffer;
  payloadHash: Buffer;
  /** another user's row holding one of this row's purchases: its place, its user, the original transaction id (empty: none) */
  purchase: Buffer;
}

/** admit-4.lua: admits rows that all fall in one shard; one answer per row, in order. */
export async function admitRows(
  redis: RedisClient,
  a: { shard: RunShardKeys; index: IndexShardKeys; force: boolean; onConflict: 'hold' | 'send'; rows: readonly AdmitArgs[] },
): Promise<AdmitAnswer[]> {
  const rowArgs = a.rows.flatMap((r) => [r.key, r.place, r.user, r.userHash, r.payloadHash, r.purchase]);
  const answers = await callScriptBuffer<Buffer[]>(
    redis,
    'admit',
    [a.shard.counters, a.shard.wide, a.shard.conflicts, a.index.state],
    [a.shard.buckets, a.index.buckets, a.force ? '1' : '0', a.onConflict, ...rowArgs],
  );
  return answers.map((answer) => {
    const code = String.fromCharCode(answer[0] as number);
    if (!ADMIT_CODES.has(code)) throw new Error(`admit: unexpected answer ${answer.toString('latin1')}`);
    return { code: code as AdmitAnswerCode, rest: answer.subarray(1) };
  });
}

/** The request that came with an answer, as the counter and timeline fields it adds one to. */
export interface RequestFields {
  /** META.status(<status>) */
  status: string;
  /** the timeline field of its requests */
  timeline: string;
  /** its latency bucket's field */
  latency: string;
  /** the timeline field of its rate-limited 429s, when it was one */
  rateLimited?: string;
}

/**
 * recordAnswer-7.lua: records a row's final answer (its record, ledger/rowRecord.ts) and counts its request.
 * Returns false when onlyIfAbsent found a final answer there.
 */
export async function recordAnswer(
  redis: RedisClient,
  a: {
    shard: RunShardKeys;
    index: IndexShardKeys;
    key: Buffer;
    record: Buffer;
    onlyIfAbsent: boolean;
    /** the outcome's timeline field (its bucket, succeeded or failed) */
    timelineField: string;
    /** a failure's summary for the recent errors (JSON) */
    error?: string;
    /** a success's value in the cross-run index */
    indexValue?: Buffer;
    request?: RequestFields;
  },
): Promise<boolean> {
  const r = a.request;
  const written = await callScriptBuffer<number>(
    redis,
    'recordAnswer',
    [a.shard.counters, a.shard.wide, a.shard.history, a.shard.errors, a.shard.timeline, a.shard.latency, a.index.state],
    [
      a.shard.buckets,
      a.index.buckets,
      a.key,
      a.record,
      a.onlyIfAbsent ? '1' : '0',
      a.error ?? '',
      a.timelineField,
      a.indexValue ?? '',
      ...(r ? ['1', r.status, r.timeline, r.latency, r.rateLimited ?? ''] : ['0']),
    ],
  );
  return written === 1;
}

/** reopenFailed-3.lua: queues failed rows of one shard again if their record is still the one read; returns how many. */
export async function reopenFailed(redis: RedisClient, a: { shard: RunShardKeys; rows: readonly { key: Buffer; record: Buffer }[] }): Promise<number> {
  return callScriptBuffer<number>(redis, 'reopenFailed', [a.shard.counters, a.shard.wide, a.shard.history], [a.shard.buckets, ...a.rows.flatMap((r) => [r.key, r.record])]);
}

/**
 * supersedeQueued-4.lua: a queued row given by a transaction id becomes superseded (record, counters and the
 * superseded rows' table, in the row's shard); false when it was superseded or answered already. `record`: its
 * superseded record (rowRecord.ts encodeSuperseded).
 */
export async function supersedeQueued(redis: RedisClient, a: { shard: RunShardKeys; key: Buffer; place: Buffer; user: Buffer; record: Buffer }): Promise<boolean> {
  const written = await callScriptBuffer<number>(
    redis,
    'supersedeQueued',
    [a.shard.counters, a.shard.wide, a.shard.superseded, a.shard.supersededWide],
    [a.shard.buckets, a.shard.supersededBuckets, a.key, a.place, a.user, a.record],
  );
  return written === 1;
}

/**
 * recordSuperseded-3.lua: keeps rows the survey superseded, each once per place (its record: rowRecord.ts
 * encodeSuperseded), and counts them; returns how many were new. The rows must fall in `shard`.
 */
export async function recordSuperseded(redis: RedisClient, a: { shard: RunShardKeys; rows: readonly { place: Buffer; record: Buffer }[] }): Promise<number> {
  if (a.rows.length === 0) return 0;
  return callScriptBuffer<number>(
    redis,
    'recordSuperseded',
    [a.shard.superseded, a.shard.supersededWide, a.shard.counters],
    [a.shard.supersededBuckets, ...a.rows.flatMap((r) => [r.place, r.record])],
  );
}

/** The first byte of claimPurchase-3.lua's answer (what follows it: see claimPurchase). */
export const CLAIM_ANSWER = {
  /** no other user holds the purchase: claimed now for the row's user, in this run */
  claimed: 'n',
  /** the row's own user claimed it already in this run (a re-run of the row, or another of its rows) */
  own: 'o',
  /** the cross-run purchase index gives it to another user (an earlier run's success, or this run's): the entry follows */
  indexed: 'i',
  /** another user's row given by a transaction id claimed it earlier in this run: its claim follows */
  claimedByOther: 'c',
} as const;
export type ClaimAnswerCode = (typeof CLAIM_ANSWER)[keyof typeof CLAIM_ANSWER];

const CLAIM_CODES = new Set<string>(Object.values(CLAIM_ANSWER));

/**
 * claimPurchase-3.lua: checks a looked-up purchase (its key in the purchase index) against the index and this
 * run's claims, and claims it for `claim`'s user when no other user holds it. The answer's code, and the other
 * user's index entry or claim (in the purchase index's value form) after 'i' and 'c'.
 */
export async function claimPurchase(
  redis: RedisClient,
  a: { index: IndexShardKeys; shard: RunShardKeys; key: Buffer; claim: Buffer },
): Promise<{ code: ClaimAnswerCode; rest: Buffer }> {
  const answer = await callScriptBuffer<Buffer>(
    redis,
    'claimPurchase',
    [a.index.purchaseState, a.shard.claims, a.shard.claimWide],
    [a.index.purchaseBuckets, a.shard.claimBuckets, a.key, a.claim],
  );
  const code = String.fromCharCode(answer[0] as number);
  if (!CLAIM_CODES.has(code)) throw new Error(`claimPurchase: unexpected answer ${answer.toString('latin1')}`);
  return { code: code as ClaimAnswerCode, rest: answer.subarray(1) };
}

/**
 * conflictQueued-3.lua: a queued row given by a transaction id is a conflict by purchase: held (record, counters
 * and the conflicts hash, in the row's shard) or, with hold false, listed and counted as sent anyway. `other`: the
 * conflict's other side ('P', the entry's varint length, the entry, the original transaction id). False when
 * nothing was written: held or answered already (held: not to be posted either way), or, sent anyway, listed already.
 */
export async function conflictQueued(redis: RedisClient, a: { shard: RunShardKeys; key: Buffer; place: Buffer; user: Buffer; hold: boolean; other: Buffer }): Promise<boolean> {
  const written = await callScriptBuffer<number>(
    redis,
    'conflictQueued',
    [a.shard.counters, a.shard.wide, a.shard.conflicts],
    [a.shard.buckets, a.key, a.place, a.user, a.hold ? '1' : '0', a.other],
  );
  return written === 1;
}

/** findRecords-2.lua: the records of these keys in one shard's row table (null where there is none). */
export async function findRecords(redis: RedisClient, a: { shard: Pick<RunShardKeys, 'counters' | 'wide' | 'buckets'>; keys: readonly Buffer[] }): Promise<(Buffer | null)[]> {
  return callScriptBuffer<(Buffer | null)[]>(redis, 'findRecords', [a.shard.counters, a.shard.wide], [a.shard.buckets, ...a.keys]);
}

/** recordPurchases-2.lua: writes purchase index entries of one shard (the same value under each key). */
export async function recordPurchases(redis: RedisClient, a: { index: IndexShardKeys; value: Buffer; keys: readonly Buffer[] }): Promise<void> {
  await callScriptBuffer<number>(redis, 'recordPurchases', [a.index.purchaseState, a.index.purchaseWide], [a.index.purchaseBuckets, a.value, ...a.keys]);
}

/** recordOnce-2.lua: keeps a rejected or duplicate row once per place and counts it; false when already there. */
export async function recordOnce(redis: RedisClient, a: { records: string; counters: string; location: string; json: string; counter: string }): Promise<boolean> {
  return (await callScript<number>(redis, 'recordOnce', [a.records, a.counters], [a.location, a.json, a.counter])) === 1;
}

/**
 * dictCode-1.lua: the dictionary codes of these strings, numbered on first use. With `cap`, a new string gets
 * none (undefined) once the dictionary has that many entries.
 */
export async function dictionaryCodes(redis: RedisClient, a: { dict: string; strings: readonly string[]; cap?: number }): Promise<(number | undefined)[]> {
  const codes = await callScript<number[]>(redis, 'dictCode', [a.dict], [String(a.cap ?? 0), ...a.strings]);
  return codes.map((c) => (c < 0 ? undefined : c));
}

/** sourceId-2.lua: the number of a source in this run's records, numbered on first use. */
export async function sourceNumber(redis: RedisClient, a: { run: RunKeys; source: string }): Promise<number> {
  return callScript<number>(redis, 'sourceId', [a.run.sources, a.run.meta], [a.source]);
}

/** runNumber-1.lua: the number of a run in the cross-run index, numbered on first use. */
export async function runNumber(redis: RedisClient, a: { runNumbers: string; runId: string }): Promise<number> {
  return callScript<number>(redis, 'runNumber', [a.runNumbers], [a.runId]);
}
