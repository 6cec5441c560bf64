// REDIS_CLUSTER_NODES parsing and where a cluster's user, password and TLS come from (no Redis needed).
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { clusterOptions, describeTarget, parseClusterNodes } from '../src/redis/connection.js';
import { bullmqPrefix, hasHashTag, keySlot } from '../src/redis/keys.js';

describe('REDIS_CLUSTER_NODES', () => {
  it('takes host:port seed nodes (IPv6 in brackets), and user, password and TLS from REDIS_URL', () => {
    expect(parseClusterNodes(' 10.0.0.5:7000, redis-a.internal:7001 ,[::1]:7002,', 'rediss://svc:p%40ss@ignored.example:6380')).toEqual({
      nodes: [
        { host: '10.0.0.5', port: 7000 },
        { host: 'redis-a.internal', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      username: 'svc',
      password: 'p@ss',
      tls: true,
    });
    expect(parseClusterNodes('127.0.0.1:7101', 'redis://127.0.0.1:6379')).toEqual({ nodes: [{ host: '127.0.0.1', port: 7101 }], tls: false });
  });

  it('takes URL nodes, whose credentials and scheme win over REDIS_URL', () => {
    const spec = parseClusterNodes('rediss://:n0de@a.example:7000,rediss://b.example:7001', 'redis://u:other@127.0.0.1:6379');
    expect(spec).toEqual({
      nodes: [
        { host: 'a.example', port: 7000 },
        { host: 'b.example', port: 7001 },
      ],
      username: 'u',
      password: 'n0de',
      tls: true,
    });
    // plain redis:// node URLs keep TLS off even when REDIS_URL is rediss://
    expect(parseClusterNodes('redis://a.example:7000', 'rediss://127.0.0.1:6379').tls).toBe(false);
  });

  it('refuses what cannot be a cluster seed list, without echoing a password', () => {
    const bad = (spec: string): string => {
      try {
        parseClusterNodes(spec);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error(`accepted ${spec}`);
    };
    expect(bad(' , ')).toMatch(/empty/);
    expect(bad('10.0.0.5')).toMatch(/"10\.0\.0\.5" is not host:port/);
    expect(bad('10.0.0.5:0')).toMatch(/no valid port/);
    expect(bad('redis://a:1,rediss://b:2')).toMatch(/mixes redis:\/\/ and rediss:\/\//);
    expect(bad('redis://:one@a:1,redis://:two@b:2')).toMatch(/different users or passwords/);
    const db = bad('redis://:secret@a:1/3');
    expect(db).toMatch(/only database 0/);
    expect(db).not.toContain('secret');
    expect(bad('http://a:1')).toMatch(/redis:\/\/ \/ rediss:\/\/ URL/);
  });

  it('is read from the environment into redisClusterNodes, and describes the nodes without the password', () => {
    const config = loadConfig({ env: { REDIS_CLUSTER_NODES: '127.0.0.1:7101,127.0.0.1:7102', REDIS_URL: 'redis://:hunter2@127.0.0.1:6379' } });
    expect(config.redisClusterNodes).toBe('127.0.0.1:7101,127.0.0.1:7102');
    const where = describeTarget(config);
    expect(where).toBe('the Redis Cluster at 127.0.0.1:7101, 127.0.0.1:7102');
    expect(describeTarget({ redisUrl: 'redis://:hunter2@127.0.0.1:6379' })).not.toContain('hunter2');
    expect(() => loadConfig({ env: { REDIS_CLUSTER_NODES: 'a:1 b:2' } })).toThrow(/redisClusterNodes .*host:port,host:port/);
  });

  it('gives every node the options BullMQ needs, and survives a failover by retrying', () => {
    const opts = clusterOptions(parseClusterNodes('127.0.0.1:7101', 'rediss://u:pw@x:1'));
    // BullMQ refuses a blocking connection whose nodes would give up on a command
    expect(opts.redisOptions?.maxRetriesPerRequest).toBeNull();
    expect(opts.redisOptions).toMatchObject({ username: 'u', password: 'pw', tls: {} });
    expect((opts.retryDelayOnFailover ?? 0) * (opts.maxRedirections ?? 0)).toBeGreaterThanOrEqual(20_000);
    expect(typeof opts.dnsLookup).toBe('function');
  });
});

describe('the BullMQ prefix on a Redis Cluster', () => {
  it('is the prefix as one hash tag, unless it holds one already; one node keeps it as it is', () => {
    expect(bullmqPrefix('rcm', true)).toBe('{rcm}');
    expect(bullmqPrefix('rcm', false)).toBe('rcm');
    expect(bullmqPrefix('{rcm}', true)).toBe('{rcm}');
    expect(bullmqPrefix('team-a{rcm}', true)).toBe('team-a{rcm}');
    expect(bullmqPrefix('{rcm}', false)).toBe('{rcm}');
    // empty braces are no hash tag to Redis: the whole prefix is wrapped, and its queue's keys share a slot
    expect(hasHashTag('rcm{}')).toBe(false);
    const wrapped = bullmqPrefix('rcm{}', true);
    expect(hasHashTag(wrapped)).toBe(true);
    expect(keySlot(`${wrapped}:receipts:wait`)).toBe(keySlot(`${wrapped}:receipts:meta`));
    expect(keySlot(`${bullmqPrefix('rcm', true)}:receipts:1`)).toBe(keySlot(`${bullmqPrefix('rcm', true)}:receipts:wait`));
  });
});
