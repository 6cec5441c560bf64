// A run's remembered sources (ingest/reread.ts), opened from the context: what failed.csv and `retry` read failed
// rows' cells from. S3 sources get a client from the configuration's S3 settings, as at ingest; `close` releases it.
import { RunSources } from '../ingest/reread.js';
import { SourceCatalog } from '../ledger/sourceCatalog.js';
import type { Context } from './context.js';

export interface OpenRunSources {
  sources: RunSources;
  close(): void;
}

export async function openRunSources(ctx: Pick<Context, 'redis' | 'config'>, runId: string): Promise<OpenRunSources> {
  const stored = await new SourceCatalog(ctx.redis, ctx.config.prefix, runId).all();
  const plain = RunSources.of(stored);
  if (!plain.onS3) return { sources: plain, close: () => undefined };
  const { s3Client } = await import('../ingest/s3.js');
  const client = s3Client(ctx.config);
  return { sources: RunSources.of(stored, { s3: client }), close: () => client.destroy() };
}
