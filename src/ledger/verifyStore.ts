// What the last `verify` pass of a run found (verify/verifyRun.ts checks; the ledger keeps it for the report):
// its summary in the run's meta, its mismatches in a list, each pass replacing the one before.
import type { StateMismatch } from '../state/mismatch.js';
import { META } from '../redis/keys.js';
import type { RunContext } from './runContext.js';

/** What the last `verify` pass found, as the run's summary shows it. */
export interface VerifySummary {
  at: string;
  api: 'v2' | 'v1';
  checked: number;
  users: number;
  matched: number;
  mismatched: number;
  aborted?: string;
  /**
   * Succeeded App Store rows whose receipt was read again from its source and its subscriptions' expiries compared
   * (`read`), whose token this tool cannot read (`unread`), and that could not be read again (`unavailable`, with
   * the first reason): those keep every other check.
   */
  receipts?: { read: number; unread: number; unavailable: number; unavailable_reason?: string };
}

const WRITE_BATCH = 500;
const READ_PAGE = 1000;

export class VerifyStore {
  constructor(private readonly run: RunContext) {}

  /** Keeps the result of a `verify` pass (replacing the previous one) for the run's report. */
  async save(result: VerifySummary, mismatches: readonly StateMismatch[]): Promise<void> {
    const { redis, keys } = this.run;
    const tx = redis.multi().del(keys.verifyMismatches);
    for (let i = 0; i < mismatches.length; i += WRITE_BATCH) tx.rpush(keys.verifyMismatches, ...mismatches.slice(i, i + WRITE_BATCH).map((m) => JSON.stringify(m)));
    tx.hset(keys.meta, META.verify, JSON.stringify(result));
    await tx.exec();
  }

  async summary(): Promise<VerifySummary | undefined> {
    const raw = await this.run.redis.hget(this.run.keys.meta, META.verify);
    return raw ? (JSON.parse(raw) as VerifySummary) : undefined;
  }

  async *mismatches(): AsyncIterable<StateMismatch> {
    const { redis, keys } = this.run;
    const total = await redis.llen(keys.verifyMismatches);
    for (let start = 0; start < total; start += READ_PAGE) {
      for (const raw of await redis.lrange(keys.verifyMismatches, start, start + READ_PAGE - 1)) yield JSON.parse(raw) as StateMismatch;
    }
  }
}
