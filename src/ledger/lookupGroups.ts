// Lookup groups: one purchase, one POST for rows given by a transaction id (issue 17). A row's signed transaction
// is only known once the worker has looked it up, right before its POST, so rows of one user that hold several
// transaction ids of one subscription (its renewals) cannot be compared at ingest as receipts are. Instead:
//
// - The ingest counts each user's rows given by a transaction id in its survey (ingest/lookupGroupCount.ts). A
//   user with two or more has a group, a small hash per run and user (RedisKeys.lookupGroup): the ingest writes its
//   size before queueing any of its rows, marks those it does not queue (already migrated, held, done before) as
//   absent, and gives the queued ones the size in their job data (ReceiptJobData.lookup.group).
// - A grouped row, after its lookup, stores its result (its signed transaction: a re-run takes it from here instead
//   of asking Apple again) and, until every row of the group has a result, waits in the delayed set without a
//   concurrency slot (workers/lookupGroupWait.ts); a row whose lookup failed for good stores a failure mark, so the
//   group completes. The row that gives the last result wakes the others.
// - Each row then decides alone from the same full set (appstore/lookup/renewals.ts): superseded when a newer
//   transaction of its purchase is in the group, else posted. Each marks itself decided; the last mark deletes the
//   group.
//
// Every write is lookupGroup-1.lua, so each step is atomic and can be made twice (a worker killed between two steps
// does it again). A worker never creates a group: a row whose group is gone (every row decided, or its ttl ran
// out) is posted alone. Groups of a row the ingest saw again after its group was deleted (a resumed ingest meets
// the rows of its last chunk again) can come back as a stray mark that no row waits on; the ttl removes it.
// Rows waiting are also kept in a set (RedisKeys.lookupWaiting), so the ingest's high-water mark does not count
// them (they wait for rows not read yet: counting them could stop the ingest for good).
import type { RedisClient } from '../redis/connection.js';
import { LOOKUP_GROUP, RedisKeys } from '../redis/keys.js';
import { callScript } from '../redis/scripts.js';
import { hash53 } from '../ingest/receiptSurvey.js';

/** A group outlives the longest run: every write renews it, and a waiting row writes at least every few minutes. */
export const GROUP_TTL_S = 30 * 86_400;

/** What a row of a group holds: `absent` (not queued by the ingest), `failed` (its lookup failed for good), or its result. */
export type GroupValue = { kind: 'absent' } | { kind: 'failed' } | ({ kind: 'result' } & GroupResult);

/** What a row's lookup found, as the group keeps it. */
export interface GroupResult {
  /** the row's record key (its job id within the run: redis/keys.ts jobIdOf) */
  fp: string;
  app_user_id: string;
  /** the signed transaction */
  jws: string;
}

export interface GroupEntry {
  /** the row's place (locationOf: `<source>#<line>`) */
  place: string;
  value: GroupValue;
}

/**
 * A group's answer to a write: `none` (no group: never made, or done), `closed` (every row decided: deleted),
 * `incomplete` (some row has no result yet), `complete` (every row's result; `completedNow` when this write gave the last).
 */
export type GroupAnswer = { kind: 'none' } | { kind: 'closed' } | { kind: 'incomplete' } | { kind: 'complete'; completedNow: boolean; entries: GroupEntry[] };

const ABSENT = 'a';
const FAILED = 'f';

function encodeValue(value: GroupValue): string {
  if (value.kind === 'absent') return ABSENT;
  if (value.kind === 'failed') return FAILED;
  return JSON.stringify({ fp: value.fp, u: value.app_user_id, jws: value.jws });
}

function decodeValue(text: string): GroupValue {
  if (text === ABSENT) return { kind: 'absent' };
  if (text === FAILED) return { kind: 'failed' };
  const v = JSON.parse(text) as { fp: string; u: string; jws: string };
  return { kind: 'result', fp: v.fp, app_user_id: v.u, jws: v.jws };
}

/** The key a user's group is named by: a hash, never the App User ID (personal data); the same as the survey's. */
export function groupUserKey(appUserId: string): string {
  return hash53(appUserId).toString(36);
}

export class LookupGroups {
  private readonly names: RedisKeys;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly runId: string,
    private readonly ttlS = GROUP_TTL_S,
  ) {
    this.names = new RedisKeys(prefix);
  }

  private key(appUserId: string): string {
    return this.names.lookupGroup(this.runId, groupUserKey(appUserId));
  }

  private async write(appUserId: string, a: { size?: number; place?: string; value?: GroupValue; keep?: boolean; decided?: boolean }): Promise<GroupAnswer> {
    const answer = await callScript<number | (number | string)[]>(
      this.redis,
      'lookupGroup',
      [this.key(appUserId)],
      [
        a.size === undefined ? '' : String(a.size),
        a.place ?? '',
        a.value ? encodeValue(a.value) : '',
        a.keep === true ? '1' : '0',
        a.decided === true ? '1' : '0',
        String(this.ttlS),
      ],
    );
    if (answer === -1) return { kind: 'none' };
    if (answer === -2) return { kind: 'closed' };
    if (!Array.isArray(answer)) return { kind: 'incomplete' };
    const entries: GroupEntry[] = [];
    for (let i = 1; i + 1 < answer.length; i += 2) entries.push({ place: String(answer[i]), value: decodeValue(String(answer[i + 1])) });
    return { kind: 'complete', completedNow: answer[0] === 1, entries };
  }

  /** The ingest: the user's group has `size` rows (made if new); before any of its rows is queued. */
  async open(appUserId: string, size: number): Promise<void> {
    await this.write(appUserId, { size });
  }

  /** The ingest: the row at `place` is not queued (migrated, held, done before): it holds no result and waits for none. */
  absent(appUserId: string, size: number, place: string): Promise<GroupAnswer> {
    return this.write(appUserId, { size, place, value: { kind: 'absent' }, keep: true, decided: true });
  }

  /** A row's lookup result; `decided` for a row that posts without waiting (one not queued as part of the group). */
  offer(place: string, result: GroupResult, opts: { decided?: boolean } = {}): Promise<GroupAnswer> {
    return this.write(result.app_user_id, { place, value: { kind: 'result', ...result }, ...(opts.decided === true ? { decided: true } : {}) });
  }

  /** A row whose lookup failed for good (its outcome recorded): the group does not wait for it. */
  failed(appUserId: string, place: string): Promise<GroupAnswer> {
    return this.write(appUserId, { place, value: { kind: 'failed' }, keep: true, decided: true });
  }

  /** A row has decided (it is posted, or was superseded): the last one deletes the group. */
  decided(appUserId: string, place: string): Promise<GroupAnswer> {
    return this.write(appUserId, { place, decided: true });
  }

  /** The result a row stored before (a re-run of its job after a crash: not looked up again). */
  async storedResult(appUserId: string, place: string): Promise<GroupResult | undefined> {
    const text = await this.redis.hget(this.key(appUserId), `${LOOKUP_GROUP.result}${place}`);
    if (text === null) return undefined;
    const value = decodeValue(text);
    return value.kind === 'result' ? { fp: value.fp, app_user_id: value.app_user_id, jws: value.jws } : undefined;
  }

  /** Whether every row of the user's group has a result (false also when there is no group). */
  async complete(appUserId: string): Promise<boolean> {
    const [size, results] = await this.redis.hmget(this.key(appUserId), LOOKUP_GROUP.size, LOOKUP_GROUP.results);
    return size !== null && results !== null && Number(results) >= Number(size);
  }

  /** A row (by job id) waits for its group; `leave` when it no longer does. */
  async wait(jobId: string): Promise<void> {
    await this.redis.sadd(this.names.lookupWaiting, jobId);
  }

  async leave(jobId: string): Promise<void> {
    await this.redis.srem(this.names.lookupWaiting, jobId);
  }

  /** How many rows wait for their groups, every run's (the ingest's high-water mark leaves them out). */
  waiting(): Promise<number> {
    return this.redis.scard(this.names.lookupWaiting);
  }
}
