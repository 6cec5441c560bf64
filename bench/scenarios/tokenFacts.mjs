// Scenario tokenFacts: what the survey pass keeps of each App Store token for the sending pass
// (ingest/tokenFacts.ts), in memory and time, on the synthetic readings of scenario survey: users with 1–4
// receipts (each refresh stored), each a subscription's renewals so far (1–20 transactions) plus, for one user in
// five, a consumable; one row in twenty a sandbox receipt. No receipts are parsed here (scenario receipts
// measures reading). The figure is the heap (and array buffers) the store holds after the last row, with a GC
// before each measurement; then every row is looked up once, as the sending pass does.
//
//   node --expose-gc bench/scenarios/tokenFacts.mjs [--rows N] [--dist DIR]     (default 1,000,000 rows; dist/ by default)
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
const { TokenFactStore } = await import(pathToFileURL(join(dist, 'ingest', 'tokenFacts.js')).href);
if (!global.gc) process.stderr.write('tokenFacts: run with node --expose-gc for a steady heap figure\n');

// each row's token: a stand-in string (the store keeps a 32-bit check of it, not the token)
const tokenOf = (line) => `MII${line.toString(36).padStart(200, 'x')}`;

const heap = () => {
  global.gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const heapBefore = heap();
const store = new TokenFactStore();
const start = process.hrtime.bigint();
let made = 0;
let ids = 0;
for (const { line, reading } of syntheticReadings(rows, { sandboxEvery: 20 })) {
  ids += reading.originalTransactionIds.length;
  store.add({ source: 0, line }, tokenOf(line), reading, undefined);
  made++;
}
const added = process.hrtime.bigint();
const heapGrown = heap();
store.trim(); // as the survey pass does once its last row is read
const heapAfter = heap();
let found = 0;
const lookStart = process.hrtime.bigint();
for (let line = 2; line < 2 + made; line++) if (store.factsAt({ source: 0, line }, tokenOf(line))?.purchases.length > 0) found++;
const lookEnd = process.hrtime.bigint();
const ms = (a, b) => Number(b - a) / 1e6;
console.log(
  JSON.stringify(
    {
      rows: made,
      original_ids_per_row: Math.round((ids / made) * 100) / 100,
      bytes_per_row_while_growing: Math.round((heapGrown - heapBefore) / made),
      bytes_per_row: Math.round((heapAfter - heapBefore) / made),
      mib_total: Math.round(((heapAfter - heapBefore) / 2 ** 20) * 10) / 10,
      store_bytes_per_row: Math.round(store.bytes() / made),
      add_us_per_row: Math.round(((ms(start, added) * 1000) / made) * 100) / 100,
      lookup_us_per_row: Math.round(((ms(lookStart, lookEnd) * 1000) / made) * 100) / 100,
      found,
    },
    null,
    1,
  ),
);
