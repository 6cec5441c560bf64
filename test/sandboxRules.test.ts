// The sandbox's rules as pure functions, no listener: the rate windows on an injected clock, the limit schedule,
// the CLI flags → options mapping, and the contract tables written from RevenueCat's documents (so a unit run catches a
// change that would make the sandbox disagree with the documents).
import { describe, expect, it } from 'vitest';
import { sandboxOptionsFromFlags } from '../src/sandbox/command.js';
import { appUserIdProblem } from '../src/sandbox/contract/appUserId.js';
import { PLATFORMS, SUBSCRIBER_STORE, storeColumn } from '../src/sandbox/contract/platforms.js';
import { RECEIPT_FIELD_NAMES, requirement } from '../src/sandbox/contract/receiptFields.js';
import { SandboxOptionsError } from '../src/sandbox/index.js';
import { RateLimiter } from '../src/sandbox/rateLimiter.js';
import { limitsAt, nextStep, parseScheduleText, perMinuteEquivalent } from '../src/sandbox/rateSchedule.js';

describe('RateLimiter windows (injected clock)', () => {
  it('sliding: a slot frees when the oldest counted request leaves the window', () => {
    let now = 10_000;
    const limiter = new RateLimiter(() => now);
    const rule = { limit: 2, windowMs: 1000, kind: 'sliding' as const };
    expect(limiter.take([rule]).allowed).toBe(true); // t=10000
    now = 10_600;
    expect(limiter.take([rule]).allowed).toBe(true); // t=10600
    const refused = limiter.take([rule]);
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 400, retryAfterSeconds: 1 });
    now = 11_001; // the first left; the one at 10600 still counts
    expect(limiter.take([rule]).allowed).toBe(true);
    expect(limiter.take([rule]).allowed).toBe(false);
  });

  it('fixed: the whole budget comes back at the window boundary, counted from the origin', () => {
    let now = 10_000;
    const limiter = new RateLimiter(() => now);
    const rule = { limit: 2, windowMs: 1000, kind: 'fixed' as const };
    now = 10_100;
    expect(limiter.take([rule]).allowed).toBe(true);
    now = 10_900;
    expect(limiter.take([rule]).allowed).toBe(true);
    expect(limiter.take([rule])).toMatchObject({ allowed: false, retryAfterMs: 100 });
    now = 11_000; // a new window: both slots again, though the request at 10900 is 100 ms old
    expect(limiter.take([rule]).allowed).toBe(true);
    expect(limiter.take([rule]).allowed).toBe(true);
    expect(limiter.take([rule]).allowed).toBe(false);
  });

  it('a minute budget spent in a burst waits for the minute; with two rules the longer wait wins', () => {
    let now = 0;
    const limiter = new RateLimiter(() => now);
    const rules = [
      { limit: 5, windowMs: 1000, kind: 'sliding' as const },
      { limit: 3, windowMs: 60_000, kind: 'fixed' as const },
    ];
    for (let i = 0; i < 3; i++) expect(limiter.take(rules).allowed).toBe(true);
    now = 5_000;
    const refused = limiter.take(rules);
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 55_000, retryAfterSeconds: 55 });
    expect(refused.refusedBy?.windowMs).toBe(60_000);
    expect(limiter.usagePerMinute()).toBe(3);
    now = 60_000;
    expect(limiter.take(rules).allowed).toBe(true);
  });
});

describe('limit schedule (pure)', () => {
  const schedule = [
    { afterSeconds: 0, perSecond: 100 },
    { afterSeconds: 40, perSecond: 50 },
    { afterSeconds: 90, perSecond: 100, perMinute: 5000 },
  ];
  it('applies the steps reached, over the base knobs', () => {
    const base = { perSecond: 7, perMinute: 0 };
    expect(limitsAt(base, [], 100)).toEqual(base);
    expect(limitsAt(base, schedule, 39.9)).toEqual({ perSecond: 100, perMinute: 0 });
    expect(limitsAt(base, schedule, 40)).toEqual({ perSecond: 50, perMinute: 0 });
    expect(limitsAt(base, schedule, 95)).toEqual({ perSecond: 100, perMinute: 5000 });
    expect(limitsAt(base, [{ afterSeconds: 10, perMinute: 60 }], 5)).toEqual(base);
    expect(nextStep(schedule, 40)).toEqual(schedule[2]);
    expect(nextStep(schedule, 90)).toBeUndefined();
  });

  it('reads the text form and states the tighter limit per minute', () => {
    expect(parseScheduleText('0:100, 40:50,90:100')).toEqual(schedule.slice(0, 2).concat({ afterSeconds: 90, perSecond: 100 }));
    expect(parseScheduleText('0:1200/m,60.5:600/min')).toEqual([
      { afterSeconds: 0, perMinute: 1200 },
      { afterSeconds: 60.5, perMinute: 600 },
    ]);
    expect(parseScheduleText('soon:100')).toMatch(/not <seconds>:<limit>/);
    expect(perMinuteEquivalent({ perSecond: 10, perMinute: 0 })).toBe(600);
    expect(perMinuteEquivalent({ perSecond: 50, perMinute: 1200 })).toBe(1200);
    expect(perMinuteEquivalent({ perSecond: 0, perMinute: 0 })).toBe(0);
  });
});

describe('rc-migrate sandbox flags → options', () => {
  it('keeps the flags scripts already pass (bench, demo)', () => {
    expect(sandboxOptionsFromFlags({ port: '0', host: '127.0.0.1', rateLimit: '25', latency: '40', latencyJitter: '40', fault5xx: '0.05', seed: '7' })).toEqual({
      port: 0,
      host: '127.0.0.1',
      rateLimitPerSecond: 25,
      latencyMs: 40,
      latencyJitterMs: 40,
      fault5xxRate: 0.05,
      seed: 7,
    });
    expect(sandboxOptionsFromFlags({ apiKey: ['appl_a', 'sk_b'] })).toMatchObject({ apiKeys: ['appl_a', 'sk_b'], platformApiKeys: {} });
    expect(sandboxOptionsFromFlags({ rateLimitHeaders: false })).toEqual({ rateLimitHeaders: 'none' });
    expect(sandboxOptionsFromFlags({})).toEqual({});
  });

  it('maps the new knobs: keys per platform, minute windows, a schedule, headers, backoff, overlaps, unlimited', () => {
    expect(
      sandboxOptionsFromFlags({
        apiKey: ['ios=appl_x', 'android=goog_y', 'macos=appl_x', 'sk_all'],
        revokedKey: ['goog_y'],
        rateLimitPerMinute: '1200',
        rateWindow: 'fixed',
        rateSchedule: '0:100,40:50,90:100',
        rateLimitHeaders: true,
        backoffMs: true,
        overlapStatus: '529',
        unlimited: true,
        v2RateLimit: '0',
      }),
    ).toEqual({
      apiKeys: ['sk_all'],
      platformApiKeys: { ios: ['appl_x'], android: ['goog_y'], macos: ['appl_x'] },
      revokedApiKeys: ['goog_y'],
      rateLimitPerMinute: 1200,
      rateLimitWindow: 'fixed',
      rateLimitSchedule: [
        { afterSeconds: 0, perSecond: 100 },
        { afterSeconds: 40, perSecond: 50 },
        { afterSeconds: 90, perSecond: 100 },
      ],
      rateLimitHeaders: 'all',
      rateLimitBackoffMs: true,
      overlapStatus: 529,
      unlimited: true,
      v2RateLimitPerMinute: 0,
    });
    // Only platform keys: no catch-all key at all (the default one is not added behind the user's back).
    expect(sandboxOptionsFromFlags({ apiKey: ['ios=appl_x'] }).apiKeys).toEqual([]);
    expect(sandboxOptionsFromFlags({ rateLimitHeaders: 'v2' }).rateLimitHeaders).toBe('v2');
  });

  it('names the bad knob', () => {
    expect(() => sandboxOptionsFromFlags({ rateSchedule: '0:100,later:5' })).toThrow(/rateLimitSchedule.*later:5/);
    expect(() => sandboxOptionsFromFlags({ rateLimitPerMinute: '-1' })).toThrow(SandboxOptionsError);
    expect(() => sandboxOptionsFromFlags({ overlapStatus: '503' })).toThrow(/overlapStatus/);
    expect(() => sandboxOptionsFromFlags({ rateLimitHeaders: 'some' })).toThrow(/rateLimitHeaders/);
  });
});

describe('the contract, as the sandbox read it from the documents', () => {
  it('X-Platform values and the store columns of the parameter reference', () => {
    expect([...PLATFORMS].sort()).toEqual(['amazon', 'android', 'ios', 'macos', 'paddle', 'roku', 'stripe', 'uikitformac']);
    expect(PLATFORMS.map(storeColumn)).toEqual(['apple', 'google', 'amazon', 'apple', 'apple', 'stripe', 'undocumented', 'undocumented']);
    expect(SUBSCRIBER_STORE).toMatchObject({ ios: 'app_store', macos: 'mac_app_store', android: 'play_store', amazon: 'amazon', stripe: 'stripe' });
  });

  it('the parameter reference row by row: Required / Optional / Not compatible for iOS/macOS, Google, Amazon, Stripe', () => {
    const table = Object.fromEntries(RECEIPT_FIELD_NAMES.map((name) => [name, (['ios', 'android', 'amazon', 'stripe'] as const).map((p) => requirement(name, p)[0]).join('')]));
    // r = required, o = optional, n = not compatible
    expect(table).toEqual({
      app_user_id: 'rrrr',
      fetch_token: 'rrrr',
      product_id: 'oron',
      price: 'ooon',
      currency: 'ooon',
      is_restore: 'oooo',
      payment_mode: 'onnn',
      create_events: 'oooo',
      should_update_last_seen_fields: 'oooo',
      subscription_group_id: 'onnn',
      store_user_id: 'nnrn',
      presented_offering_identifier: 'oooo',
      observer_mode: 'oono',
      introductory_price: 'onnn',
      normal_duration: 'onnn',
      intro_duration: 'onnn',
      trial_duration: 'onnn',
      store_country: 'onnn',
      ip_address: 'onnn',
    });
    // Roku and Paddle have no column: only what every store accepts, required only what every store requires.
    expect(RECEIPT_FIELD_NAMES.filter((name) => requirement(name, 'roku') !== 'not_compatible')).toEqual([
      'app_user_id',
      'fetch_token',
      'is_restore',
      'create_events',
      'should_update_last_seen_fields',
      'presented_offering_identifier',
    ]);
    expect(requirement('app_user_id', 'paddle')).toBe('required');
  });

  it('App User IDs: at most 100 characters, no "/", the documented blocklist (any letter case), nothing else', () => {
    for (const refused of ['a/b', 'u'.repeat(101), 'null', 'NULL', 'None', 'nil', 'anonymous', 'guest', '-1', '0', '[object Object]']) {
      expect(appUserIdProblem(refused), refused).toBeDefined();
    }
    for (const accepted of ['u'.repeat(100), 'user with space é', ' padded ', 'undefined', 'NaN', '00', 'Guest42']) {
      expect(appUserIdProblem(accepted), accepted).toBeUndefined();
    }
  });
});
