// Builds the ledger record of a row from its job, so every path that ends a row writes the same fields.
import type { Job } from 'bullmq';
import { maskToken } from '../ingest/fingerprint.js';
import { jobInput } from '../queue/jobData.js';
import type { Outcome, ReceiptJobData } from '../types.js';

type Details = Omit<
  Outcome,
  'src' | 'line' | 'fp' | 'platform' | 'app_user_id' | 'product_id' | 'token' | 'queued_at' | 'finished_at' | 'input' | 'body' | 'expect' | 'past_google_cutoff'
>;

export function outcomeOf(job: Job<ReceiptJobData, void, string>, details: Details): Outcome {
  const data = job.data;
  return {
    src: data.src,
    line: data.line,
    fp: data.fp,
    platform: data.platform,
    app_user_id: data.body.app_user_id,
    ...(data.body.product_id !== undefined ? { product_id: data.body.product_id } : {}),
    token: maskToken(data.body.fetch_token),
    queued_at: new Date(job.timestamp).toISOString(),
    finished_at: new Date().toISOString(),
    ...(data.expect ? { expect: data.expect } : {}),
    ...(data.token_expiry?.past_cutoff === true ? { past_google_cutoff: true } : {}),
    ...details,
    // Failed rows keep their input (failed.csv can be fed back to `run`) and body (`retry`); successes need not.
    // The job holds the receipt once (queue/jobData.ts): the input cells get it back here.
    ...(details.status === 'failed' ? { input: jobInput(data), body: data.body } : {}),
  };
}
