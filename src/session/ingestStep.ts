// A session's ingest step: the ingester with the options the configuration gives, the masked tokens of its
// conflicts noted for conflicts.csv, and with `limit`, a canary (canary.ts). It keeps whether the run's last
// ingest left rows for a later one, which tells the session when to stop waiting.
import type { Config } from '../config.js';
import type { ColumnOptions } from '../ingest/columns.js';
import { ingest, type IngestDeps, type IngestProgress, type IngestResult, type RowSelector } from '../ingest/ingester.js';
import type { RowsAt } from '../queue/reconcile.js';
import type { RunLedger } from '../ledger/runLedger.js';
import type { Logger } from '../logger.js';
import { readCanary, runCanary, saveCanary, surveyRows } from './canary.js';
import { ConflictTokens } from './conflictTokens.js';
import { ingestOptionsFrom } from './ingestOptions.js';
import { sourceRowsAt } from './sourceRows.js';

export interface IngestStepRequest {
  columns?: ColumnOptions;
  /** send rows again even when an earlier run migrated them */
  force?: boolean;
  /** a row whose token another user has: held back (default) or sent anyway */
  onConflict?: 'hold' | 'send';
  /** a canary: queue this many rows to be sent, then stop reading */
  limit?: number;
}

export interface IngestStepOptions {
  config: Config;
  runId: string;
  sources: string[];
  deps: IngestDeps;
  log: Logger;
  signal: AbortSignal;
  onProgress: (p: IngestProgress) => void;
}

export class IngestStep {
  /** this session read the whole of its sources (the run's ingest is done, whatever the ledger's flag says) */
  ended = false;

  private constructor(
    private readonly ledger: RunLedger,
    private readonly opts: IngestStepOptions,
    /** the run's last ingest left rows for a later one (a canary, this session's or an earlier one's) */
    public leftForLater: boolean,
  ) {}

  static async open(ledger: RunLedger, opts: IngestStepOptions): Promise<IngestStep> {
    return new IngestStep(ledger, opts, (await readCanary(ledger)) !== undefined);
  }

  async run(req: IngestStepRequest = {}): Promise<IngestResult> {
    const { config, runId, sources, signal, onProgress } = this.opts;
    const { limit, ...request } = req;
    const options = ingestOptionsFrom(config, { runId, sources, ...request, signal, onProgress });
    const once = async (select?: RowSelector): Promise<IngestResult> => {
      const tokens = new ConflictTokens(this.ledger, select);
      // a canary's selector leaves rows for later: their lookup groups would never complete
      const result = await ingest(this.opts.deps, { ...options, select: tokens, lookupGroups: select === undefined });
      await tokens.flush();
      return result;
    };
    if (limit === undefined) {
      const result = await once();
      if (!result.aborted) await this.settle(result.partial);
      return result;
    }
    const canary = await runCanary(this.ledger, {
      limit,
      sources: options.sources,
      deps: this.opts.deps.sources ?? {},
      columns: options.columns,
      rows: surveyRows(limit),
      ...(options.encoding ? { encoding: options.encoding } : {}),
      ...(options.keys ? { keys: options.keys } : {}),
      ingest: once,
    });
    if (!canary.ingest.aborted) {
      await this.settle(canary.ingest.partial, { limit, sent: canary.sent });
      this.opts.log.info(
        { limit, sent: canary.sent, partial: canary.ingest.partial },
        canary.ingest.partial ? 'canary queued: the rest of the sources is left for the next run' : 'canary: the sources held no more rows',
      );
    }
    return canary.ingest;
  }

  /**
   * Reads rows of the run again from their sources, by place, as the run's source catalog says it read them, for
   * the reconcile pass (queue/reconcile.ts).
   */
  rowsAt(): RowsAt {
    const { runId } = this.opts;
    const { catalog, sources } = this.opts.deps;
    if (!catalog) return (places) => Promise.resolve(places.map(() => ({ ok: false, reason: `run ${runId} keeps no record of its sources` })));
    return sourceRowsAt({ runId, catalog, ...(sources ? { deps: sources } : {}) });
  }

  /** After an ingest that read what it meant to: a canary that left rows is recorded, else any record is cleared. */
  private async settle(partial: boolean, canary?: { limit: number; sent: number }): Promise<void> {
    this.leftForLater = partial;
    this.ended = !partial;
    await saveCanary(this.ledger, partial && canary ? canary : undefined);
  }
}
