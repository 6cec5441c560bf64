// One place that opens Redis connections, so every part of the tool gets the options BullMQ needs and a
// connection error that says what to do instead of a stack trace.
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from '../config.js';

/** Options BullMQ requires on connections used by Workers (blocking commands must never give up). */
export function redisOptions(extra: RedisOptions = {}): RedisOptions {
  return { maxRetriesPerRequest: null, enableReadyCheck: true, ...extra };
}

export function openRedis(url: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, redisOptions(extra));
}

/** Connects and pings once, failing fast with a message that names the URL (without its password). */
export async function connectRedis(url: string, timeoutMs = 3000): Promise<Redis> {
  const redis = new Redis(url, redisOptions({ lazyConnect: true, connectTimeout: timeoutMs, retryStrategy: () => null }));
  redis.on('error', () => {
    /* surfaced by connect() below */
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new ConfigError(
      `cannot reach Redis at ${redactUrl(url)} (${(err as Error).message}): start one (redis-server, or docker compose up -d redis) or set REDIS_URL`,
    );
  }
  // From here on, reconnect like a long-lived connection should.
  redis.options.retryStrategy = (times: number) => Math.min(times * 200, 2000);
  return redis;
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
