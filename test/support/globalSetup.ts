// Finds the Redis the tests use, once: testcontainers when a Docker engine answers, otherwise REDIS_URL
// (default redis://127.0.0.1:6379). Tests never share keys: each one takes its own prefix (see redis.ts).
// Only the integration and system projects run it (vitest.config.ts), so `npm run test:unit` needs no Redis at all.
import { request } from 'node:http';
import { existsSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { Redis } from 'ioredis';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

function dockerAnswers(): Promise<boolean> {
  const socketPath = '/var/run/docker.sock';
  if (process.env.DOCKER_HOST === undefined && !existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

async function answers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2000, retryStrategy: () => null, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

let stopContainer: (() => Promise<unknown>) | undefined;

export async function setup(project: TestProject): Promise<void> {
  let url: string | undefined;
  // The probe answers at once when there is no Docker socket, so the fallback costs nothing.
  if (await dockerAnswers()) {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer('redis:7-alpine').start();
    stopContainer = () => container.stop();
    url = container.getConnectionUrl();
  }
  url ??= process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  if (!(await answers(url))) {
    throw new Error(`no Redis answers at ${url}: start one (redis-server --daemonize yes --port 6379 --save "") or set REDIS_URL`);
  }
  project.provide('redisUrl', url);
}

export async function teardown(): Promise<void> {
  await stopContainer?.();
}
