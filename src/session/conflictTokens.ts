// conflicts.csv names the token two users share, masked (`abcd…wxyz`), so that a person can find both rows in the
// export. The ledger keys rows by the token's fingerprint and keeps no token, so the masked token of each
// conflicting row is noted at admission, in a small hash of the run (conflicts are few), by the row's place.
import type { Admission, RunLedger } from '../ledger/runLedger.js';
import type { RowChoice, RowSelector } from '../ingest/ingester.js';
import { maskToken } from '../ingest/fingerprint.js';
import { locationOf } from '../redis/keys.js';
import type { RedisClient } from '../redis/connection.js';
import type { ReceiptJobData } from '../types.js';

/**
 * A selector that takes what `inner` takes (every row without one) and notes the masked token of every row
 * admitted as a conflict, one HSET per chunk, in order; `flush` waits for them and surfaces a failure.
 */
export class ConflictTokens implements RowSelector {
  private writes: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly ledger: RunLedger,
    private readonly inner?: RowSelector,
  ) {}

  offer(row: ReceiptJobData): RowChoice {
    return this.inner ? this.inner.offer(row) : 'take';
  }

  admitted(rows: readonly ReceiptJobData[], admissions: readonly Admission[]): void {
    this.inner?.admitted?.(rows, admissions);
    const fields: string[] = [];
    admissions.forEach((a, i) => {
      const row = rows[i];
      if (a.kind === 'conflict' && row) fields.push(locationOf(row.src, row.line), maskToken(row.body.fetch_token));
    });
    if (fields.length > 0) {
      const key = this.ledger.keys.conflictTokens;
      this.writes = this.writes
        .then(() => this.redis.hset(key, ...fields))
        .catch((err: unknown) => {
          this.failure ??= err instanceof Error ? err : new Error(String(err));
        });
    }
  }

  /** Waits for the notes written so far (before the report reads them). */
  async flush(): Promise<void> {
    await this.writes;
    if (this.failure !== undefined) throw this.failure;
  }
}

/** The masked tokens of a run's conflicting rows, by place. */
export async function conflictTokens(redis: RedisClient, ledger: RunLedger): Promise<Map<string, string>> {
  return new Map(Object.entries(await redis.hgetall(ledger.keys.conflictTokens)));
}
