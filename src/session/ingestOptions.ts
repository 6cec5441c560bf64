// What an ingest takes from the configuration, built in one place for `run`, `ingest` and scheduled firings.
import type { Config } from '../config.js';
import type { ColumnOptions } from '../ingest/columns.js';
import type { IngestOptions, IngestProgress } from '../ingest/ingester.js';
import { checkSources, isS3Url, type SourceDeps } from '../ingest/sources.js';
import { surveyWorkerFile } from '../ingest/surveyThread.js';
import { keyPlanOf } from '../revenuecat/keyRing.js';
import type { Resources } from './resources.js';

/** What the caller decides about one ingest; the rest comes from the configuration. */
export interface IngestRequest {
  runId: string;
  sources: string[];
  columns?: ColumnOptions;
  /** send rows again even when an earlier run migrated them */
  force?: boolean;
  /** a row whose token another user has (in this run or an earlier one): held back (default) or sent anyway */
  onConflict?: 'hold' | 'send';
  signal?: AbortSignal;
  onProgress?: (p: IngestProgress) => void;
}

export function ingestOptionsFrom(config: Config, req: IngestRequest): IngestOptions {
  // Rows of a platform without a key are rejected when this process knows the keys (`run`, or an `ingest` given
  // them); an `ingest` without any key leaves that to the workers (no_api_key).
  const keys = keyPlanOf(config);
  return {
    ...(keys ? { keys } : {}),
    runId: req.runId,
    sources: req.sources,
    columns: req.columns ?? {},
    force: req.force ?? false,
    ...(req.onConflict ? { onConflict: req.onConflict } : {}),
    chunkSize: config.ingestChunkSize,
    maxAttempts: config.maxAttempts,
    highWaterMark: config.highWaterMark,
    encoding: config.inputEncoding,
    ...(config.appleBundleIds?.length || config.skipSandbox
      ? { appleRules: { ...(config.appleBundleIds ? { bundleIds: config.appleBundleIds } : {}), ...(config.skipSandbox ? { skipSandbox: true } : {}) } }
      : {}),
    ...(config.readAppleReceipts ? {} : { readAppleTokens: false }),
    ...surveyWorkerOf(config),
    ...(req.signal ? { signal: req.signal } : {}),
    ...(req.onProgress ? { onProgress: req.onProgress } : {}),
  };
}

/** The survey pass's worker (ingest/surveyThread.ts), unless the configuration turns it off or there is none to run. */
function surveyWorkerOf(config: Config): { surveyWorker?: URL } {
  const file = config.surveyThread ? surveyWorkerFile() : undefined;
  return file ? { surveyWorker: file } : {};
}

/**
 * How the sources are reached, checked before anything starts (a typo stops the command with a message instead
 * of a half-done ingest). S3 sources get a client from the configuration's S3 settings, released with the
 * resources; the AWS SDK is loaded only when a source is on S3.
 */
export async function openSources(config: Config, sources: string[], resources: Resources): Promise<SourceDeps> {
  const deps: SourceDeps = {};
  if (sources.some(isS3Url)) {
    const { s3Client } = await import('../ingest/s3.js');
    deps.s3 = resources.add('S3 client', s3Client(config), (c) => c.destroy());
  }
  await checkSources(sources, deps);
  return deps;
}
