// The Redis layer's contract, checked without a Redis: every script is a file named for its command and
// key count, the field names the scripts write are the ones src/redis/keys.ts gives the TypeScript side, no
// Lua is left in a .ts file, and the key layout is the documented one (src/redis/keys.ts).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import {
  FLIGHT,
  INGEST_STATE,
  LOOKUP_GROUP,
  META,
  PACE,
  RATE,
  RedisKeys,
  SHARD_TAGS,
  TABLE,
  TIMELINE,
  jobIdOf,
  locationOf,
  parseTimelineField,
  timelineField,
} from '../src/redis/keys.js';
import { callScript, loadScripts, scriptFiles } from '../src/redis/scripts.js';
import { FORMAT, INDEX_HASHES_BYTES, LISTPACK_VALUE_MAX, RECORD } from '../src/ledger/rowRecord.js';
import { ADMIT_ANSWER, CLAIM_ANSWER } from '../src/ledger/scriptCalls.js';
import { RECENT_ERRORS } from '../src/ledger/statistics.js';
import { SHORT_HASH_BYTES, TOKEN_FINGERPRINT_BYTES } from '../src/ledger/rowIdentity.js';

const SRC = join(import.meta.dirname, '..', 'src');

/** What a script's `-- <Name>[.<key>]` annotation may refer to. */
const NAMED: Record<string, unknown> = {
  META,
  FLIGHT,
  ADMIT_ANSWER,
  CLAIM_ANSWER,
  FORMAT,
  RECENT_ERRORS,
  RATE,
  PACE,
  INGEST_STATE,
  TIMELINE,
  TABLE,
  LOOKUP_GROUP,
  RECORD,
  LISTPACK_VALUE_MAX,
  INDEX_HASHES_BYTES,
  SHORT_HASH_BYTES,
  TOKEN_FINGERPRINT_BYTES,
};

function resolve(ref: string): unknown {
  const [name, key] = ref.split('.') as [string, string | undefined];
  const value = NAMED[name];
  return key === undefined ? value : (value as Record<string, unknown> | undefined)?.[key];
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

describe('Redis scripts', () => {
  const scripts = [...scriptFiles().values()];

  it('finds every script file, named <name>-<numberOfKeys>.lua', () => {
    const files = readdirSync(join(SRC, 'redis', 'scripts')).filter((f) => f.endsWith('.lua'));
    expect(scripts.map((s) => s.file).sort()).toEqual(files.sort());
    for (const name of [
      'admit',
      'recordOnce',
      'recordAnswer',
      'reopenFailed',
      'sourceId',
      'releaseUserLock',
      'dictCode',
      'findRecords',
      'runNumber',
      'claimPurchase',
      'conflictQueued',
    ]) {
      expect(scriptFiles().has(name), name).toBe(true);
    }
  });

  it('uses exactly the keys its file name declares', () => {
    for (const s of scripts) {
      const used = [...s.lua.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
      expect(Math.max(0, ...used), s.file).toBe(s.numberOfKeys);
    }
  });

  it('names hash fields through constants annotated with the TypeScript name they must equal', () => {
    const metaValues = new Set<string>(Object.values(META as Record<string, unknown>).filter((v): v is string => typeof v === 'string'));
    let annotated = 0;
    for (const s of scripts) {
      for (const line of s.lua.split('\n')) {
        const constant = /^local \w+ = ('([^']*)'|(\d+)) -- ([A-Z_]+(?:\.\w+)?)$/.exec(line);
        if (constant) {
          const value = constant[2] ?? Number(constant[3]);
          expect(resolve(constant[4] as string), `${s.file}: ${line}`).toBe(value);
          annotated++;
          continue;
        }
        // Anywhere else, a literal that is a meta field name would be a second, unchecked spelling of it.
        for (const m of line.matchAll(/'([^']*)'/g)) expect(metaValues.has(m[1] as string), `${s.file}: ${line}`).toBe(false);
      }
    }
    expect(annotated).toBeGreaterThanOrEqual(10);
  });

  it('declares every answer code of admit and claimPurchase once, and each script names each of its codes', () => {
    for (const [script, name, codes] of [
      ['admit', 'ADMIT_ANSWER', ADMIT_ANSWER],
      ['claimPurchase', 'CLAIM_ANSWER', CLAIM_ANSWER],
    ] as const) {
      const lua = scriptFiles().get(script)?.lua ?? '';
      const named = new Set([...lua.matchAll(new RegExp(`-- ${name}\\.(\\w+)$`, 'gm'))].map((m) => m[1]));
      expect([...named].sort(), script).toEqual(Object.keys(codes).sort());
      expect(new Set(Object.values(codes)).size, script).toBe(Object.keys(codes).length);
    }
  });

  it('leaves no Lua in any .ts file of src/', () => {
    const offenders = tsFiles(SRC).filter((f) => /redis\.call\(|\.eval\(|\.evalsha\(|defineCommand\(/.test(readFileSync(f, 'utf8')));
    expect(offenders.map((f) => f.slice(SRC.length + 1))).toEqual(['redis/scripts.ts']);
  });

  it('defines every script once per connection, refuses a wrong key count and an unknown name', async () => {
    const redis = new Redis({ lazyConnect: true });
    try {
      loadScripts(redis);
      loadScripts(redis); // idempotent: a second load must not trip over the commands it defined
      const commands = redis as unknown as Record<string, unknown>;
      for (const s of scripts) expect(typeof commands[s.name], s.name).toBe('function');
      await expect(callScript(redis, 'releaseUserLock', [], ['token'])).rejects.toThrow(/takes 1 keys, got 0/);
      await expect(callScript(redis, 'noSuchScript', [], [])).rejects.toThrow(/no Redis script named noSuchScript/);
    } finally {
      redis.disconnect();
    }
  });
});

describe('Redis keys', () => {
  it("keeps the key layout: a run's own keys under its hash tag, its rows and the index under the shard tags", () => {
    const keys = new RedisKeys('rcm');
    expect(keys.run('R1')).toEqual({
      meta: 'rcm:run:{R1}:meta',
      sources: 'rcm:run:{R1}:src',
      dict: 'rcm:run:{R1}:dict',
      verifyMismatches: 'rcm:run:{R1}:vmm',
      conflictTokens: 'rcm:run:{R1}:ctok',
      sourceCatalog: 'rcm:run:{R1}:srccat',
    });
    const tag = SHARD_TAGS[3] as string;
    expect(keys.runShard('R1', 3)).toEqual({
      counters: `rcm:{${tag}}:run:R1:c`,
      buckets: `rcm:{${tag}}:run:R1:b:`,
      wide: `rcm:{${tag}}:run:R1:w`,
      rejected: `rcm:{${tag}}:run:R1:rej`,
      duplicates: `rcm:{${tag}}:run:R1:dup`,
      conflicts: `rcm:{${tag}}:run:R1:conf`,
      superseded: `rcm:{${tag}}:run:R1:sup`,
      supersededBuckets: `rcm:{${tag}}:run:R1:sb:`,
      supersededWide: `rcm:{${tag}}:run:R1:sw`,
      claims: `rcm:{${tag}}:run:R1:pcs`,
      claimBuckets: `rcm:{${tag}}:run:R1:pcb:`,
      claimWide: `rcm:{${tag}}:run:R1:pcw`,
      history: `rcm:{${tag}}:run:R1:hist`,
      errors: `rcm:{${tag}}:run:R1:err`,
      timeline: `rcm:{${tag}}:run:R1:tl`,
      latency: `rcm:{${tag}}:run:R1:lat`,
    });
    expect(keys.index(3)).toEqual({
      state: `rcm:{${tag}}:ix:state`,
      buckets: `rcm:{${tag}}:ix:b:`,
      purchaseState: `rcm:{${tag}}:ix:pstate`,
      purchaseBuckets: `rcm:{${tag}}:ix:pb:`,
      purchaseWide: `rcm:{${tag}}:ix:pw`,
    });
    // A prefix that is one hash tag (as BullMQ needs on a cluster) is the same name to the ledger, whose keys
    // carry tags of their own: its braces would otherwise put every key in one slot.
    expect(new RedisKeys('{rcm}').run('R1')).toEqual(keys.run('R1'));
    expect(new RedisKeys('{rcm}').runShard('R1', 3)).toEqual(keys.runShard('R1', 3));
    expect([keys.runs, keys.runNumbers, keys.fatal, keys.userLock('h'), keys.rate, keys.pace, keys.workerBeat('w1'), keys.inFlight('R1.fp')]).toEqual([
      'rcm:runs',
      'rcm:runno',
      'rcm:fatal',
      'rcm:lock:user:h',
      'rcm:rate',
      'rcm:pace',
      'rcm:worker:w1',
      'rcm:flight:R1.fp',
    ]);
    expect([locationOf('a.csv', 3), jobIdOf('R1', 'fp')]).toEqual(['a.csv#3', 'R1.fp']);
  });

  it('builds and reads back the composite field names', () => {
    expect([META.progress(2), META.status('429'), META.status('ECONNRESET')]).toEqual(['progress:2', 'status:429', 'status:ECONNRESET']);
    expect([META.statusOf('status:503'), META.statusOf('rows_read'), META.statusOf('progress:1')]).toEqual(['503', undefined, undefined]);
    expect(timelineField(1_700_000_000, TIMELINE.rateLimited)).toBe('1700000000:l');
    expect(parseTimelineField('1700000000:s')).toEqual({ t: 1_700_000_000, kind: 's' });
    // the ledger writes record kinds as timeline kinds
    expect([TIMELINE.succeeded, TIMELINE.failed]).toEqual([RECORD.succeeded, RECORD.failed]);
  });
});
