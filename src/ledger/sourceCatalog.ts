// The run's catalog of its sources: for each source a run read, one record of what the source was when first
// read (size and mtime, or ETag) and how it was read (column options, encoding). A failed row keeps only its place
// in Redis; failed.csv and `retry` read its cells again from the source, and this record is what lets them check
// that the source is still the one the run read. One small record per source: nothing per row.
// The record's shape is the ingester's (ingest/sourceRecord.ts); here it is stored as text, so the ledger does not
// depend on how rows are read.
import type { RedisClient } from '../redis/connection.js';
import { RedisKeys } from '../redis/keys.js';

export class SourceCatalog {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    runId: string,
  ) {
    this.key = new RedisKeys(prefix).run(runId).sourceCatalog;
  }

  /**
   * Records a source the first time the run reads it; a later ingest of the same run (a resume, the run after a
   * canary) keeps the first record, since the rows admitted then were read from that. Returns the record kept.
   */
  async remember(source: string, record: string): Promise<string> {
    const set = await this.redis.hsetnx(this.key, source, record);
    if (set === 1) return record;
    return (await this.redis.hget(this.key, source)) ?? record;
  }

  /** Every recorded source: name → record. */
  async all(): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.key)));
  }
}
