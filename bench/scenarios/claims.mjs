// Scenario claims: what the purchase claims of rows given by a transaction id cost (ledger/lookupConflicts.ts): the
// Redis bytes of one run's claims per looked-up row checked, and how many checks a second Redis answers. Rows of
// distinct users, each holding a purchase of its own (the common case: every check claims), admitted through
// RunLedger.admit in chunks of 1,000 as the ingester does, then checked 200 at a time as concurrent workers would.
// Bytes are MEMORY USAGE (SAMPLES 0) summed over the claims' keys of every shard. Its keys are deleted afterwards.
//
//   node bench/scenarios/claims.mjs [--rows N] [--redis URL] [--dist DIR]   (default 50,000 rows, REDIS_URL, dist/)
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { Redis } from 'ioredis';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const rows = Number(flag('--rows', '50000'));
const url = flag('--redis', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const dist = flag('--dist', join(import.meta.dirname, '..', '..', 'dist'));
const { RunLedger } = await import(pathToFileURL(join(dist, 'ledger', 'runLedger.js')).href);

const redis = new Redis(url);
const prefix = `bench-claims-${process.pid}`;
try {
  const ledger = new RunLedger(redis, prefix, 'claims');
  await ledger.beginIngest(['tx.csv']);
  const user = (i) => `user-${i}`;
  const input = Array.from({ length: rows }, (_, i) => ({
    src: 'tx.csv',
    line: i + 2,
    platform: 'ios',
    body: { app_user_id: user(i), fetch_token: String(2_000_000_000_000_000 + i) },
  }));
  const fps = [];
  for (let i = 0; i < rows; i += 1000) for (const a of await ledger.admit(input.slice(i, i + 1000))) fps.push(a.fp);
  const started = process.hrtime.bigint();
  let conflicts = 0;
  for (let i = 0; i < rows; i += 200) {
    const checks = await Promise.all(
      fps
        .slice(i, i + 200)
        .map((fp, j) =>
          ledger.checkLookedUpPurchases({ fp, src: 'tx.csv', line: i + j + 2, app_user_id: user(i + j) }, [
            { environment: 'production', originalTransactionId: String(3_000_000_000_000_000 + i + j) },
          ]),
        ),
    );
    conflicts += checks.filter((c) => c.kind !== 'clear').length;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let bytes = 0;
  let keys = 0;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*:run:claims:pc*`, 'COUNT', 1000);
    cursor = next;
    for (const k of found) {
      bytes += Number(await redis.memory('USAGE', k, 'SAMPLES', '0'));
      keys++;
    }
  } while (cursor !== '0');
  console.log(JSON.stringify({ rows, conflicts, keys, claimBytes: bytes, bytesPerRow: Math.round((bytes / rows) * 10) / 10, checksPerSecond: Math.round(rows / seconds) }));
} finally {
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (found.length > 0) await redis.unlink(...found);
  } while (cursor !== '0');
  redis.disconnect();
}
