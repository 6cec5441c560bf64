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

/**
 * Polls INFO memory every `intervalMs` (on its own connection) until stopped: baseline, peak (and when), last,
 * and a series of one sample per `seriesEveryMs` (epoch ms, bytes) for the results file.
 */
export async function watchRedisMemory(url, intervalMs = 100, { seriesEveryMs = 1000 } = {}) {
  const redis = await openRedis(url);
  await settleLazyFree(redis);
  const baseline = await usedMemory(redis);
  const startedAt = Date.now();
  let peak = baseline;
  let peakAt = startedAt;
  let last = baseline;
  let samples = 0;
  let lastSeries = 0;
  const series = [];
  let busy = false;
  const record = (m) => {
    samples++;
    last = m;
    const now = Date.now();
    if (m > peak) {
      peak = m;
      peakAt = now;
    }
    if (now - lastSeries >= seriesEveryMs) {
      lastSeries = now;
      series.push([now, m]);
    }
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    usedMemory(redis)
      .then((m) => {
        if (m !== undefined) record(m);
      })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, intervalMs);
  return {
    current: () => last,
    peak: () => peak,
    async stop() {
      clearInterval(timer);
      const m = await usedMemory(redis).catch(() => undefined);
      if (m !== undefined) record(m);
      redis.disconnect();
      return { baseline, peak, peakAt, last, peakOverBaseline: peak - baseline, samples, intervalMs, series };
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

/**
 * MEMORY USAGE of every key under `prefix:` (pipelined, SAMPLES 0), grouped by the key's shape: the run id
 * becomes <run>, and name segments made of digits/hex or a hash tag become *, so a ledger spread over many
 * bucket keys shows as one line. Whatever layout the ledger uses, this sees it.
 */
export async function prefixMemory(redis, prefix, { runId } = {}) {
  checkPrefix(prefix);
  const keys = await scanKeys(redis, `${prefix}:*`, 2000);
  const groups = {};
  let total = 0;
  const BATCH = 500;
  for (let i = 0; i < keys.length; i += BATCH) {
    const batch = keys.slice(i, i + BATCH);
    const pipe = redis.pipeline();
    for (const key of batch) pipe.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    const replies = await pipe.exec();
    batch.forEach((key, j) => {
      const bytes = Number(replies[j][1] ?? 0);
      total += bytes;
      const shape = keyShape(key.slice(prefix.length + 1), runId);
      const g = (groups[shape] ??= { keys: 0, bytes: 0 });
      g.keys++;
      g.bytes += bytes;
    });
  }
  const entries = Object.entries(groups).sort((a, b) => b[1].bytes - a[1].bytes);
  const shown = Object.fromEntries(entries.slice(0, 40));
  if (entries.length > 40) {
    shown['(other shapes)'] = entries.slice(40).reduce((acc, [, g]) => ({ keys: acc.keys + g.keys, bytes: acc.bytes + g.bytes }), { keys: 0, bytes: 0 });
  }
  return { keys: keys.length, bytes: total, groups: shown };
}

function keyShape(rest, runId) {
  let s = rest;
  if (runId) s = s.split(runId).join('<run>');
  return s
    .split(':')
    .map((seg) => {
      if (/^\{.*\}$/.test(seg)) return '{*}';
      if (/^[0-9a-f]{1,40}$/i.test(seg) && /\d/.test(seg)) return '*';
      return /^[A-Za-z0-9_-]{16,}$/.test(seg) ? '*' : seg;
    })
    .join(':');
}

/**
 * MEMORY USAGE of up to `n` jobs waiting in a BullMQ queue (`<prefix>:<queue>:wait`, the newest end): what one
 * queued row costs in Redis, job hash and all.
 */
export async function sampleJobBytes(redis, prefix, queue, n = 50) {
  const ids = await redis.lrange(`${prefix}:${queue}:wait`, 0, n - 1);
  if (ids.length === 0) return [];
  const pipe = redis.pipeline();
  for (const id of ids) pipe.call('MEMORY', 'USAGE', `${prefix}:${queue}:${id}`, 'SAMPLES', '0');
  const replies = await pipe.exec();
  return replies.map(([, v]) => Number(v ?? 0)).filter((v) => v > 0);
}
