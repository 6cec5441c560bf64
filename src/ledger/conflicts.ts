// Conflicts: rows whose token another user has, in this run or in an earlier one (whose row the cross-run index
// names by run number and record variant). admit-4.lua records each, keyed by the row's place; here they are read
// back with the other side's place and user as far as the ledgers still say. conflicts.csv also names the
// token, masked, which no record keeps: the ingest notes it for each conflicting row (noteTokens).
import type { RedisClient } from '../redis/connection.js';
import { locationOf, RedisKeys } from '../redis/keys.js';
import { TOKEN_FINGERPRINT_BYTES } from './rowIdentity.js';
import { decodeConflict, decodeHead, decodePlace, keyText, shardOfKey } from './rowRecord.js';
import { hashEntries } from './rowTable.js';
import type { RunContext } from './runContext.js';
import type { RunNumbering } from './runNumbering.js';
import { findRecords } from './scriptCalls.js';

/** A conflict: a row whose token another user has, and that other user's row. */
export interface Conflict {
  src: string;
  line: number;
  app_user_id: string;
  /** the row's record key (token fingerprint) */
  fp: string;
  /** held back (not sent), or sent anyway (onConflict 'send') */
  held: boolean;
  /** the other row: of this run, or of the earlier run that migrated the token (as far as that run's ledger still says) */
  other: { run_id?: string; src?: string; line?: number; app_user_id?: string };
  /** a conflict by purchase: the App Store original transaction id the two rows share (absent: a shared token) */
  original_transaction_id?: string;
}

/** A conflicting row's masked token, by its place. */
export interface ConflictToken {
  src: string;
  line: number;
  /** the token masked (ingest/fingerprint.ts maskToken): never the token itself */
  masked: string;
}

export class RunConflicts {
  constructor(
    private readonly run: RunContext,
    private readonly numbering: RunNumbering,
  ) {}

  /** Rows whose token another user has (held or sent), with the other side as far as the ledger knows it. */
  async *conflicts(): AsyncIterable<Conflict> {
    const { redis, names, runId, prefix } = this.run;
    const sources = await this.numbering.sources();
    const runIds = new Map<number, string | null>();
    for (const k of this.run.shards) {
      for await (const [place, value] of hashEntries(redis, k.conflicts)) {
        const c = decodeConflict(value);
        const at = decodePlace(place);
        const conflict: Conflict = {
          src: sources[at.sourceNumber] ?? `source #${at.sourceNumber}`,
          line: at.line,
          app_user_id: c.appUserId,
          fp: keyText(c.key),
          held: c.held,
          other: {},
          ...(c.originalTransactionId !== undefined ? { original_transaction_id: c.originalTransactionId } : {}),
        };
        if (c.other.scope === 'run') {
          conflict.other = { run_id: runId, src: sources[c.other.sourceNumber] ?? `source #${c.other.sourceNumber}`, line: c.other.line, app_user_id: c.other.appUserId };
        } else if (c.other.scope === 'earlier-purchase') {
          const { runNumber, key } = c.other;
          if (!runIds.has(runNumber)) runIds.set(runNumber, await redis.hget(names.runNumbers, `n:${runNumber}`));
          const otherRun = runIds.get(runNumber);
          if (otherRun) conflict.other = { run_id: otherRun, ...(await earlierRow(redis, prefix, otherRun, key)) };
        } else {
          const { runNumber, variant } = c.other.entry;
          if (!runIds.has(runNumber)) runIds.set(runNumber, await redis.hget(names.runNumbers, `n:${runNumber}`));
          const otherRun = runIds.get(runNumber);
          if (otherRun) {
            const key = Buffer.concat([c.key.subarray(0, TOKEN_FINGERPRINT_BYTES), variant > 0 ? Buffer.from([variant]) : Buffer.alloc(0)]);
            conflict.other = { run_id: otherRun, ...(await earlierRow(redis, prefix, otherRun, key)) };
          }
        }
        yield conflict;
      }
    }
  }

  /** Notes the masked tokens of conflicting rows (one write). */
  async noteTokens(tokens: readonly ConflictToken[]): Promise<void> {
    if (tokens.length === 0) return;
    await this.run.redis.hset(this.run.keys.conflictTokens, ...tokens.flatMap((t) => [locationOf(t.src, t.line), t.masked]));
  }

  /** The masked tokens of the run's conflicting rows, by place (`<source>#<line>`). */
  async tokens(): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.run.redis.hgetall(this.run.keys.conflictTokens)));
  }
}

/** Place and user of a row of another run, by record key (for a conflict with an earlier run). */
async function earlierRow(redis: RedisClient, prefix: string, runId: string, key: Buffer): Promise<{ src?: string; line?: number; app_user_id?: string }> {
  const names = new RedisKeys(prefix);
  const [rec] = await findRecords(redis, { shard: names.runShard(runId, shardOfKey(key)), keys: [key] });
  if (!rec) return {};
  const head = decodeHead(rec);
  const all = await redis.hgetall(names.run(runId).sources);
  const name = Object.entries(all).find(([, id]) => Number(id) === head.sourceNumber)?.[0];
  return { ...(name !== undefined ? { src: name } : {}), line: head.line, app_user_id: head.appUserId };
}
