// Redis helpers of the benchmark. It only ever writes under prefixes that start with "bench-", and deletes
// them with SCAN + UNLINK on the prefix (never FLUSHALL/FLUSHDB: the Redis may be shared).
import { Redis } from 'ioredis';

export async function openRedis(url) {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: null, connectTimeout: 3000, retryStrategy: (n) => (n > 5 ? null : 200) });
  redis.on('error', () => undefined);
  await redis.connect();
  await redis.ping();
  return redis;
}

function checkPrefix(prefix) {
  if (!/^bench-[A-Za-z0-9_.-]+$/.test(prefix)) throw new Error(`refusing to touch Redis keys outside bench-*: "${prefix}"`);
}

/** Every key under `prefix:` (SCAN, so Redis is never blocked). */
export async function scanKeys(redis, pattern, count = 1000) {
  const keys = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', count);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** Deletes every key under `prefix:` with SCAN + UNLINK; returns how many went. */
export async function deletePrefix(redis, prefix) {
  checkPrefix(prefix);
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 2000);
    cursor = next;
    if (batch.length > 0) deleted += await redis.unlink(...batch);
  } while (cursor !== '0');
  return deleted;
}

export async function usedMemory(redis) {
  const info = await redis.info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  return m ? Number(m[1]) : undefined;
}

/** Waits (up to `timeoutMs`) until Redis has freed what UNLINK handed to its lazy-free thread, so a memory
 * baseline taken next is not inflated by the previous scenario's keys. */
export async function settleLazyFree(redis, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await redis.info('memory');
    const pending = Number(/^lazyfree_pending_objects:(\d+)/m.exec(info)?.[1] ?? 0);
    if (pending === 0 || Date.now() > deadline) return pending;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls INFO memory every `intervalMs` (on its own connection) until stopped: baseline, peak and last. */
export async function watchRedisMemory(url, intervalMs = 100) {
  const redis = await openRedis(url);
  await settleLazyFree(redis);
  const baseline = await usedMemory(redis);
  let peak = baseline;
  let last = baseline;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    usedMemory(redis)
      .then((m) => {
        if (m !== undefined) {
          last = m;
          if (m > peak) peak = m;
        }
      })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, intervalMs);
  return {
    current: () => last,
    async stop() {
      clearInterval(timer);
      const m = await usedMemory(redis).catch(() => undefined);
      if (m !== undefined) {
        last = m;
        if (m > peak) peak = m;
      }
      redis.disconnect();
      return { baseline, peak, last, peakOverBaseline: peak - baseline };
    },
  };
}

/** MEMORY USAGE (exact: SAMPLES 0) of each key; absent keys count 0. */
export async function memoryOfKeys(redis, keys) {
  const out = {};
  for (const key of keys) out[key] = Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
  return out;
}

/** CPU seconds Redis has used (user + sys, all threads); the Redis may be shared, so deltas are approximate. */
export async function redisCpuSeconds(redis) {
  const info = await redis.info('cpu');
  const get = (k) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return get('used_cpu_user') + get('used_cpu_sys');
}
