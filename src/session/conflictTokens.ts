// conflicts.csv names the token two users share, masked (`abcd…wxyz`), so that a person can find both rows in the
// export. The ledger keys rows by the token's fingerprint and keeps no token, so the masked token of each
// conflicting row is noted at admission, in the run's ledger (RunLedger.noteConflictTokens; conflicts are few).
import type { Admission, ConflictToken, RunLedger } from '../ledger/runLedger.js';
import type { RowChoice, RowSelector } from '../ingest/ingester.js';
import { maskToken } from '../ingest/fingerprint.js';
import type { ReceiptJobData } from '../types.js';

/**
 * A selector that takes what `inner` takes (every row without one) and notes the masked token of every row
 * admitted as a conflict, one HSET per chunk, in order; `flush` waits for them and surfaces a failure.
 */
export class ConflictTokens implements RowSelector {
  private writes: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;

  constructor(
    private readonly ledger: RunLedger,
    private readonly inner?: RowSelector,
  ) {}

  offer(row: ReceiptJobData): RowChoice {
    return this.inner ? this.inner.offer(row) : 'take';
  }

  admitted(rows: readonly ReceiptJobData[], admissions: readonly Admission[]): void {
    this.inner?.admitted?.(rows, admissions);
    const tokens: ConflictToken[] = [];
    admissions.forEach((a, i) => {
      const row = rows[i];
      if (a.kind === 'conflict' && row) tokens.push({ src: row.src, line: row.line, masked: maskToken(row.body.fetch_token) });
    });
    if (tokens.length > 0) {
      this.writes = this.writes
        .then(() => this.ledger.noteConflictTokens(tokens))
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
export async function conflictTokens(ledger: RunLedger): Promise<Map<string, string>> {
  return ledger.conflictTokens();
}
