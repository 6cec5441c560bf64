// Reads the ledger's tables from TypeScript: a shard of a run's rows, or of the cross-run index. The scripts
// write them (src/redis/scripts/includes/table.lua): buckets `<prefix><i>` for i below 2^level + split, each a
// small hash of record key → record, and a `wide` hash for the few records too long for a bucket (whose bucket
// entry is the stub WIDE).
import type { RedisClient } from '../redis/connection.js';
import { TABLE } from '../redis/keys.js';

export interface TableKeys {
  /** hash with the table's growth state (TABLE fields) */
  state: string;
  /** bucket name prefix */
  buckets: string;
  /** hash of wide records (the row table only) */
  wide?: string;
}

const WIDE = Buffer.from('~');
/** Buckets read at once (pipelined). */
const BATCH = 64;

/** How many buckets the table has now. */
export async function bucketCount(redis: RedisClient, table: TableKeys): Promise<number> {
  const [level, split] = await redis.hmget(table.state, TABLE.level, TABLE.split);
  return 2 ** Number(level ?? 0) + Number(split ?? 0);
}

async function readBucket(redis: RedisClient, key: string): Promise<Buffer[]> {
  return (await redis.callBuffer('HGETALL', key)) as Buffer[];
}

/**
 * Every record of the table, as [key, record]. While the table grows (a run still being ingested), a record
 * may come twice, never not at all: a split only moves records to a bucket numbered higher than every bucket
 * that existed before it, and the buckets added meanwhile are read at the end.
 */
export async function* tableRecords(redis: RedisClient, table: TableKeys): AsyncIterable<[Buffer, Buffer]> {
  let from = 0;
  let to = await bucketCount(redis, table);
  while (from < to) {
    for (let start = from; start < to; start += BATCH) {
      const batch = await Promise.all(Array.from({ length: Math.min(BATCH, to - start) }, (_, i) => readBucket(redis, `${table.buckets}${start + i}`)));
      const wide: Buffer[] = [];
      for (const flat of batch) {
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const key = flat[i] as Buffer;
          const value = flat[i + 1] as Buffer;
          if (value.equals(WIDE)) wide.push(key);
          else yield [key, value];
        }
      }
      if (wide.length > 0 && table.wide !== undefined) {
        const values = await redis.hmgetBuffer(table.wide, ...wide);
        for (const [i, value] of values.entries()) if (value) yield [wide[i] as Buffer, value];
      }
    }
    from = to;
    to = await bucketCount(redis, table);
  }
}

/** Every field and value of a hash, as Buffers (HSCAN: entries of a hash growing meanwhile may come twice). */
export async function* hashEntries(redis: RedisClient, key: string): AsyncIterable<[Buffer, Buffer]> {
  let cursor = '0';
  do {
    const [next, entries] = await redis.hscanBuffer(key, cursor, 'COUNT', 1000);
    cursor = next.toString();
    for (let i = 1; i < entries.length; i += 2) yield [entries[i - 1] as Buffer, entries[i] as Buffer];
  } while (cursor !== '0');
}
