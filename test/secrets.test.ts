// Secrets stay secret: after a run, the API key is in no artefact at all (output, logs, report files, metrics,
// Redis), and full fetch tokens only where they must be (failed.csv and rejected.csv, which are re-run as
// input, and the queue and ledger that send them). (An unreadable key file's message: keyFile.test.ts.)
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisUrl } from './support/redis.js';
import { token, writeCsv } from './support/harness.js';
import { pipelineFixture } from './support/fixture.js';
import { keyLabel as sandboxKeyLabel } from '../src/sandbox/index.js';

const KEY = 'appl_S3CRETk3y7f9c2aZZ';
const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');

/** Every value stored under a prefix, whatever the key's type, as text. */
async function dumpPrefix(prefix: string): Promise<string> {
  const redis = new Redis(redisUrl());
  const parts: string[] = [];
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const type = await redis.type(key);
        parts.push(key);
        if (type === 'string') parts.push((await redis.get(key)) ?? '');
        else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
        else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
        else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)));
        else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, '0', '-1')));
        else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      }
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return parts.join('\n');
}

describe('secrets', () => {
  const fx = pipelineFixture('secrets', { apiKeys: [KEY] });

  it('reads the key from a file and leaves it, and full tokens, out of every artefact', async () => {
    const keyFile = join(fx.dir, 'key');
    await writeFile(keyFile, `${KEY}\n`);
    const tokens = { ok: token(1), bad: token(2, 'invalid'), rejected: token(3) };
    const source = await writeCsv(
      fx.dir,
      's.csv',
      ['platform', 'app_user_id', 'fetch_token', 'price', 'currency'],
      [
        ['ios', 'sec-ok', tokens.ok, '', ''],
        ['ios', 'sec-bad', tokens.bad, '', ''],
        ['ios', 'sec-rej', tokens.rejected, '1.99', 'dollars'],
      ],
    );
    const out = join(fx.dir, 'report');
    const ran = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const env = {
        PATH: process.env.PATH ?? '',
        REDIS_URL: redisUrl(),
        RC_MIGRATE_PREFIX: fx.prefix,
        REVENUECAT_API_URL: fx.sandbox.url,
        REVENUECAT_API_KEY_FILE: keyFile,
        LOG_LEVEL: 'trace',
      };
      const child = spawn(process.execPath, [CLI, 'run', source, '--run-id', 'sec', '--out', out], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      child.on('close', (code) => resolve({ code, text }));
    });
    expect(ran.code).toBe(1);
    expect(ran.text).toMatch(/succeeded\s+1/);
    expect(ran.text).toContain('"level":20'); // debug logs (one per row) were on
    expect(ran.text).not.toContain(KEY);
    for (const t of Object.values(tokens)) expect(ran.text).not.toContain(t);

    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['summary.json', 'succeeded.csv', 'failed.csv', 'rejected.csv', 'report.html', 'mismatches.csv']));
    for (const file of files) {
      const text = await readFile(join(out, file), 'utf8');
      expect(text, file).not.toContain(KEY);
      // failed.csv and rejected.csv are inputs for the next run: they must keep the tokens of their own rows.
      if (file === 'failed.csv') expect(text).toContain(tokens.bad);
      else if (file === 'rejected.csv') expect(text).toContain(tokens.rejected);
      else for (const t of Object.values(tokens)) expect(text, file).not.toContain(t);
    }
    // Redis holds tokens (it must send them) but never the key: workers hold the key in memory only.
    const dump = await dumpPrefix(fx.prefix);
    expect(dump).toContain('sec-bad');
    expect(dump).not.toContain(KEY);
  });
});

describe('secrets: a key per platform', () => {
  const IOS_KEY = 'appl_P1atf0rmIosK3y9q';
  const ANDROID_KEY = 'goog_P1atf0rmAndr0idK3y7w';
  // The Play key is revoked: its stop is logged, reported and kept in Redis, naming the key by its first characters only.
  const fx = pipelineFixture('secrets-keys', { apiKeys: [], platformApiKeys: { ios: [IOS_KEY], android: [ANDROID_KEY] }, revokedApiKeys: [ANDROID_KEY] });

  it('reads platform keys from the environment and from files, and leaves them out of every artefact, a stopped key included', async () => {
    const keyFile = join(fx.dir, 'android.key');
    await writeFile(keyFile, `${ANDROID_KEY}\n`);
    const source = await writeCsv(
      fx.dir,
      'p.csv',
      ['platform', 'app_user_id', 'fetch_token', 'product_id'],
      [
        ['ios', 'key-ios', token(11), ''],
        ['android', 'key-android', token(12), 'gold'],
      ],
    );
    const out = join(fx.dir, 'report');
    const ran = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const env = {
        PATH: process.env.PATH ?? '',
        REDIS_URL: redisUrl(),
        RC_MIGRATE_PREFIX: fx.prefix,
        REVENUECAT_API_URL: fx.sandbox.url,
        REVENUECAT_API_KEY_IOS: IOS_KEY,
        REVENUECAT_API_KEY_ANDROID_FILE: keyFile,
        LOG_LEVEL: 'trace',
      };
      const child = spawn(process.execPath, [CLI, 'run', source, '--run-id', 'keys', '--out', out], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      child.on('close', (code) => resolve({ code, text }));
    });
    // The App Store row went through with its own key; the Play rows stopped on theirs (exit 3), named by prefix.
    expect(ran.code).toBe(3);
    expect(ran.text).toMatch(/succeeded\s+1/);
    expect(ran.text).toContain('REVENUECAT_API_KEY_ANDROID');
    expect(ran.text).toContain('goog_P1…');
    expect(fx.sandbox.stats().byKey).toMatchObject({ [sandboxKeyLabel(IOS_KEY)]: { accepted: 1 }, [sandboxKeyLabel(ANDROID_KEY)]: { accepted: 0 } });
    for (const key of [IOS_KEY, ANDROID_KEY]) {
      expect(ran.text).not.toContain(key);
      for (const file of await readdir(out)) expect(await readFile(join(out, file), 'utf8'), file).not.toContain(key);
      expect(await dumpPrefix(fx.prefix)).not.toContain(key);
    }
    // The stop itself is in Redis, under the key's fingerprint.
    expect(await dumpPrefix(fx.prefix)).toContain('goog_P1…');
  });
});
