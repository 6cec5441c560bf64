// Per-test Redis isolation: every test gets a unique key prefix, and its keys are deleted afterwards.
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { Redis } from 'ioredis';

export function redisUrl(): string {
  const url = inject('redisUrl');
  // Only the integration project's global setup provides it (vitest.config.ts): a unit-tier test has no Redis.
  if (!url) throw new Error('no Redis in this test tier: a test that needs Redis belongs to the integration project, not UNIT_TESTS in vitest.config.ts');
  return url;
}

export function uniquePrefix(name: string): string {
  return `t-${name}-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under a prefix (SCAN, never KEYS, so a shared Redis is not blocked). */
export async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * Connections and prefixes for one test file, dropped after its last test: `prefix(name)` takes a unique key
 * prefix, `connect()` a connection to the test Redis (options Workers need).
 */
export function redisScope(): { prefix(name: string): string; connect(): Redis; close(): Promise<void> } {
  const prefixes: string[] = [];
  const connections: Redis[] = [];
  return {
    prefix(name) {
      const p = uniquePrefix(name);
      prefixes.push(p);
      return p;
    },
    connect() {
      const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
      connections.push(redis);
      return redis;
    },
    async close() {
      for (const r of connections) r.disconnect();
      for (const p of prefixes) await dropPrefix(p);
    },
  };
}
