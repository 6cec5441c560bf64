// What every part of a run's ledger shares: the connection, the run's key names and its shards. Cheap to build;
// each part of the ledger (admission, outcomes, statistics, …) takes one.
import type { RedisClient } from '../redis/connection.js';
import { RedisKeys, SHARDS, type IndexShardKeys, type RunKeys, type RunShardKeys } from '../redis/keys.js';
import { keyBytes, shardOfKey } from './rowRecord.js';

const SHARD_NUMBERS = Array.from({ length: SHARDS }, (_, s) => s);

export class RunContext {
  readonly names: RedisKeys;
  /** the run's own keys (one hash tag) */
  readonly keys: RunKeys;
  /** the run's shards, by number */
  readonly shards: readonly RunShardKeys[];

  constructor(
    readonly redis: RedisClient,
    readonly prefix: string,
    readonly runId: string,
  ) {
    this.names = new RedisKeys(prefix);
    this.keys = this.names.run(runId);
    this.shards = SHARD_NUMBERS.map((s) => this.names.runShard(runId, s));
  }

  shard(s: number): RunShardKeys {
    return this.shards[s] as RunShardKeys;
  }

  /** The cross-run index's shard with the same number (the same hash tag as the run's shard). */
  index(s: number): IndexShardKeys {
    return this.names.index(s);
  }

  /** The shard of a row by its record key (fp), or shard 0 for a request without a row. */
  shardOfFp(fp: string | undefined): RunShardKeys {
    return this.shard(fp ? shardOfKey(keyBytes(fp)) : 0);
  }
}
