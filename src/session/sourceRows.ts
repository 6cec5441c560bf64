// Rows read again from their sources by place, for the reconcile pass (queue/reconcile.ts): the ledger keeps no
// row bodies, so a row whose job was lost is rebuilt from the line it was read from. The run's source catalog
// (ledger/sourceCatalog.ts) says how each source was read (columns, encoding, header) and what it was (size and
// mtime, or ETag); ingest/reread.ts refuses a source that changed since and checks each row's token against its
// place, exactly as for failed.csv and `retry`.
import { RunSources, rereadJob } from '../ingest/reread.js';
import type { SourceDeps } from '../ingest/sources.js';
import type { SourceCatalog } from '../ledger/sourceCatalog.js';
import type { RowPlace, RowRead, RowsAt } from '../queue/reconcile.js';

export interface SourceRowsOptions {
  runId: string;
  catalog: Pick<SourceCatalog, 'all'>;
  /** how S3 sources are reached (the process's client) */
  deps?: SourceDeps;
  now?: () => number;
}

/**
 * A `RowsAt` that reads each source named by the places once and rebuilds the rows at those lines. A row that no
 * longer reads as it did (another token at that line, a cell now invalid, a source changed or gone) is answered
 * with the reason, naming the source.
 */
export function sourceRowsAt(opts: SourceRowsOptions): RowsAt {
  return async (places) => {
    const sources = RunSources.of(await opts.catalog.all(), { ...(opts.deps ?? {}), ...(opts.now ? { now: opts.now } : {}) });
    const answers = new Map<RowPlace, RowRead>();
    const bySource = new Map<string, RowPlace[]>();
    for (const p of places) bySource.set(p.src, [...(bySource.get(p.src) ?? []), p]);
    for (const [source, list] of bySource) {
      const byKey = new Map(list.map((p) => [`${p.line}\u0000${p.fp}`, p]));
      try {
        for await (const read of sources.read(source, list)) {
          const place = byKey.get(`${read.place.line}\u0000${read.place.fp}`);
          if (!place) continue;
          if (!read.ok) {
            answers.set(place, { ok: false, reason: read.reason });
            continue;
          }
          answers.set(place, { ok: true, row: rereadJob(opts.runId, read, opts.now?.()) });
        }
      } catch (err) {
        const reason = (err as Error).message;
        for (const p of list) if (!answers.has(p)) answers.set(p, { ok: false, reason });
      }
    }
    return places.map((p) => answers.get(p) ?? { ok: false, reason: `${p.src} has no row at line ${p.line} any more: was the file changed since it was ingested?` });
  };
}
