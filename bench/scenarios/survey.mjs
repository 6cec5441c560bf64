// Scenario survey: what the first pass over a run's App Store rows (ingest/receiptSurvey.ts) costs in memory and
// time, on synthetic readings shaped like a real user base: users with 1–4 receipts (each refresh stored), each
// a subscription's renewals so far (1–20 transactions) plus, for one user in five, a consumable. No receipts are
// parsed here (scenario receipts measures reading); this is the survey's own bookkeeping and decisions.
//
//   node bench/scenarios/survey.mjs [--rows N] [--dist DIR]     (default 1,000,000 rows; dist/ by default)
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { syntheticReadings } from '../lib/syntheticReadings.mjs';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const rows = Number(flag('--rows', '1000000'));
const dist = flag('--dist', join(import.meta.dirname, '..', '..', 'dist'));
const { ReceiptSurvey } = await import(pathToFileURL(join(dist, 'ingest', 'receiptSurvey.js')).href);

global.gc?.();
const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
const survey = new ReceiptSurvey();
const start = process.hrtime.bigint();
let made = 0;
let purchases = 0;
for (const { line, appUserId, reading } of syntheticReadings(rows)) {
  purchases += reading.purchases.length;
  survey.add({ place: { source: 0, line }, appUserId, reading });
  made++;
}
const added = process.hrtime.bigint();
const result = survey.finish();
const done = process.hrtime.bigint();
const heapAfter = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
const ms = (a, b) => Number(b - a) / 1e6;
console.log(
  JSON.stringify(
    {
      rows: made,
      purchases_per_row: Math.round((purchases / made) * 10) / 10,
      superseded: result.counts.superseded,
      distinct_purchases: result.counts.purchases,
      add_us_per_row: Math.round(((ms(start, added) * 1000) / made) * 100) / 100,
      finish_ms: Math.round(ms(added, done)),
      bytes_per_row: Math.round((heapAfter - heapBefore) / made),
    },
    null,
    1,
  ),
);
