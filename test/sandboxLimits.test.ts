// The sandbox's rate-limit knobs (issue 9's benchmark needs them): per-second and per-minute windows, sliding
// or fixed, a limit schedule, opt-in v1 rate-limit headers and backoff_ms, unlimited mode, and the per-second
// timeline; same-user overlaps stay apart from the limit. Real HTTP on loopback; the window arithmetic itself
// is checked on an injected clock in sandboxRules.test.ts, so no assertion here depends on the machine's speed.
import { afterEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox, type SandboxOptions } from '../src/sandbox/index.js';

const KEY = 'appl_sandbox_key';
const SECRET = 'sk_sandbox_secret';

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

async function start(options: SandboxOptions = {}): Promise<Sandbox> {
  sandbox = await startSandbox({ apiKeys: [KEY, SECRET], ...options });
  return sandbox;
}

interface Reply {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

async function post(sb: Sandbox, appUserId: string, fetchToken = `tok-${appUserId}`): Promise<Reply> {
  const res = await fetch(`${sb.url}/v1/receipts`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}`, 'X-Platform': 'ios' },
    body: JSON.stringify({ app_user_id: appUserId, fetch_token: fetchToken, create_events: false, should_update_last_seen_fields: false }),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

async function burst(sb: Sandbox, n: number, tag = 'b'): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (let i = 0; i < n; i++) replies.push(await post(sb, `${tag}${i}`));
  return replies;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function admin(sb: Sandbox, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${sb.url}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

const statuses = (replies: Reply[]) => replies.map((r) => r.status);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('per-minute budgets over HTTP', () => {
  for (const kind of ['sliding', 'fixed'] as const) {
    it(`a ${kind} minute window of 20 admits exactly 20 in a burst, then 429 / 7429 with 0 < Retry-After ≤ 60`, async () => {
      const sb = await start({ rateLimitPerMinute: 20, rateLimitWindow: kind });
      const replies = await burst(sb, 25);
      expect(statuses(replies.slice(0, 20))).toEqual(Array(20).fill(200));
      for (const refused of replies.slice(20)) {
        expect(refused.status).toBe(429);
        expect(refused.body.code).toBe(7429);
        expect(refused.body.message).toMatch(/20 requests per minute/);
        const retryAfter = Number(refused.headers.get('retry-after'));
        expect(retryAfter).toBeGreaterThan(0);
        expect(retryAfter).toBeLessThanOrEqual(60);
        // A minute budget spent in a burst is not back in a second or two.
        expect(retryAfter).toBeGreaterThan(30);
        // No v2-style body field unless asked for.
        expect(refused.body).not.toHaveProperty('backoff_ms');
      }
      expect(sb.stats().rateLimited).toBe(5);
      expect(sb.rateLimit()).toMatchObject({ current: { perSecond: 0, perMinute: 20 }, window: kind, usagePerMinute: 20 });
    });
  }

  it('rateLimitBackoffMs adds v2-style backoff_ms to v1 429s, matching Retry-After', async () => {
    const sb = await start({ rateLimitPerMinute: 2, rateLimitBackoffMs: true });
    const replies = await burst(sb, 3);
    expect(statuses(replies)).toEqual([200, 200, 429]);
    const refused = replies[2]!;
    expect(refused.body.backoff_ms).toBeGreaterThan(30_000);
    expect(refused.body.backoff_ms).toBeLessThanOrEqual(60_000);
    expect(Number(refused.headers.get('retry-after'))).toBe(Math.ceil(refused.body.backoff_ms / 1000));
  });

  it('both limits apply when both are set', async () => {
    const sb = await start({ rateLimitPerSecond: 100, rateLimitPerMinute: 3 });
    expect(statuses(await burst(sb, 4))).toEqual([200, 200, 200, 429]);
  });
});

describe('limit schedule over HTTP', () => {
  it('changes the limit when a step is reached; set at start, read back from GET /_sandbox/rate-limit', async () => {
    const sb = await start({
      rateLimitSchedule: [
        { afterSeconds: 0, perMinute: 3 },
        { afterSeconds: 0.4, perMinute: 6 },
      ],
    });
    const before = await admin(sb, 'GET', '/_sandbox/rate-limit');
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ current: { perSecond: 0, perMinute: 3 }, base: { perSecond: 0, perMinute: 0 }, next: { afterSeconds: 0.4, perMinute: 6 } });
    expect(before.body.next.inSeconds).toBeGreaterThan(0);
    expect(statuses(await burst(sb, 4, 'a'))).toEqual([200, 200, 200, 429]);

    await sleep(Math.ceil(before.body.next.inSeconds * 1000) + 50);
    expect(sb.rateLimit()).toMatchObject({ current: { perMinute: 6 }, next: null });
    // The minute still holds the first 3: the raised limit admits 3 more, not 6.
    expect(statuses(await burst(sb, 4, 'c'))).toEqual([200, 200, 200, 429]);
    const buckets = sb.stats().timeline.buckets;
    expect(buckets.reduce((n, b) => n + b.admitted, 0)).toBe(6);
    expect(buckets.reduce((n, b) => n + b.rateLimited, 0)).toBe(2);
    // A bucket shows the limits at its last request.
    expect(buckets.at(-1)?.perMinute).toBe(6);
  });

  it('is set, restarted and removed at runtime through /_sandbox/rate-limit/schedule (text or steps)', async () => {
    const sb = await start({ rateLimitPerSecond: 50 });
    const set = await admin(sb, 'POST', '/_sandbox/rate-limit/schedule', { schedule: '0:2/m,3600:10' });
    expect(set.status).toBe(200);
    expect(set.body.schedule).toEqual([
      { afterSeconds: 0, perMinute: 2 },
      { afterSeconds: 3600, perSecond: 10 },
    ]);
    // The step sets only the per-minute limit: the base per-second one stays.
    expect(set.body.current).toEqual({ perSecond: 50, perMinute: 2 });
    expect(set.body.next).toMatchObject({ afterSeconds: 3600, perSecond: 10 });
    expect(statuses(await burst(sb, 3))).toEqual([200, 200, 429]);

    const bad = await admin(sb, 'POST', '/_sandbox/rate-limit/schedule', {
      schedule: [
        { afterSeconds: 5, perSecond: 1 },
        { afterSeconds: 1, perSecond: 2 },
      ],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/ascending/);
    expect((await admin(sb, 'POST', '/_sandbox/rate-limit/schedule', { schedule: [{ afterSeconds: 1 }] })).status).toBe(400);
    expect((await admin(sb, 'POST', '/_sandbox/rate-limit/schedule', {})).status).toBe(400);

    const removed = await admin(sb, 'DELETE', '/_sandbox/rate-limit/schedule');
    expect(removed.body).toMatchObject({ schedule: [], current: { perSecond: 50, perMinute: 0 }, next: null });
    // Same knob through POST /_sandbox/config, and through the library.
    expect((await admin(sb, 'POST', '/_sandbox/config', { rateLimitSchedule: '0:7' })).body.options.rateLimitSchedule).toEqual([{ afterSeconds: 0, perSecond: 7 }]);
    sb.setRateLimitSchedule([{ afterSeconds: 0, perSecond: 9 }]);
    expect(sb.rateLimit().current.perSecond).toBe(9);
  });
});

describe('rate-limit headers', () => {
  const v2Get = async (sb: Sandbox) => fetch(`${sb.url}/v2/projects/proj_sandbox/customers/nobody`, { headers: { Authorization: `Bearer ${SECRET}` } });

  it('v1 answers carry none by default (RevenueCat publishes no v1 limit); v2 answers do', async () => {
    const sb = await start({ rateLimitPerSecond: 50, rateLimitPerMinute: 1200 });
    expect(sb.options().rateLimitHeaders).toBe('v2');
    const v1 = await post(sb, 'u1');
    expect(v1.status).toBe(200);
    expect(v1.headers.get('revenuecat-rate-limit-current-limit')).toBeNull();
    expect(v1.headers.get('revenuecat-rate-limit-current-usage')).toBeNull();
    expect((await v2Get(sb)).headers.get('revenuecat-rate-limit-current-limit')).toBe('480');
  });

  it("'all' adds them to v1 (the tighter limit, per minute); 'none' removes them from v2 too", async () => {
    const sb = await start({ rateLimitPerSecond: 50, rateLimitPerMinute: 1200, rateLimitHeaders: 'all' });
    const first = await post(sb, 'u1');
    expect(first.headers.get('revenuecat-rate-limit-current-limit')).toBe('1200');
    expect(first.headers.get('revenuecat-rate-limit-current-usage')).toBe('1');
    sb.configure({ rateLimitHeaders: 'none' });
    expect((await post(sb, 'u2')).headers.get('revenuecat-rate-limit-current-limit')).toBeNull();
    expect((await v2Get(sb)).headers.get('revenuecat-rate-limit-current-limit')).toBeNull();
    // Booleans still work: true = every answer, false = none.
    sb.configure({ rateLimitHeaders: true });
    expect(sb.options().rateLimitHeaders).toBe('all');
    expect((await post(sb, 'u3')).headers.get('revenuecat-rate-limit-current-limit')).toBe('1200');
  });
});

describe('unlimited mode', () => {
  it('ignores every limit and the latency while on, and gives them back when off', async () => {
    const sb = await start({ rateLimitPerSecond: 1, v2RateLimitPerMinute: 1, latencyMs: 250 });
    sb.configure({ unlimited: true });
    expect(statuses(await burst(sb, 5))).toEqual([200, 200, 200, 200, 200]);
    // No latency: a request for a user is done before the next can arrive, so concurrent ones never overlap.
    const same = await Promise.all(Array.from({ length: 8 }, (_, i) => post(sb, 'same', `t${i}`)));
    expect(statuses(same)).toEqual(Array(8).fill(200));
    expect(sb.stats()).toMatchObject({ rateLimited: 0, overlaps: 0 });
    expect(sb.rateLimit()).toMatchObject({ unlimited: true, current: { perSecond: 0, perMinute: 0 }, base: { perSecond: 1 } });

    sb.configure({ unlimited: false });
    const limited = await Promise.all([post(sb, 'x', 'x1'), post(sb, 'x', 'x2')]);
    expect(statuses(limited).sort()).toEqual([200, 429]);
  });
});

describe('rate limit vs same-user overlap', () => {
  for (const overlapStatus of [429, 529] as const) {
    it(`an overlap answers ${overlapStatus} / 7638 and is never counted as the rate limit`, async () => {
      const sb = await start({ rateLimitPerSecond: 1000, latencyMs: 200, overlapStatus });
      const replies = await Promise.all([post(sb, 'dup', 'a'), post(sb, 'dup', 'b')]);
      const overlap = replies.find((r) => r.status !== 200);
      expect(statuses(replies).sort()).toEqual([200, overlapStatus]);
      expect(overlap?.body.code).toBe(7638);
      const stats = sb.stats();
      expect(stats.overlaps).toBe(1);
      expect(stats.rateLimited).toBe(0);
      expect(stats.byCode['7429']).toBeUndefined();
      expect(Object.values(stats.byKey)[0]).toMatchObject({ requests: 2, accepted: 1, rateLimited: 0 });
      const totals = stats.timeline.buckets.reduce((t, b) => ({ overlaps: t.overlaps + b.overlaps, rateLimited: t.rateLimited + b.rateLimited }), { overlaps: 0, rateLimited: 0 });
      expect(totals).toEqual({ overlaps: 1, rateLimited: 0 });
    });
  }
});

describe('timeline in stats', () => {
  it('counts v1 requests, admitted, 429s and successes per second with the limits in force; reset starts it again', async () => {
    const sb = await start({ rateLimitPerMinute: 3 });
    await burst(sb, 5);
    await fetch(`${sb.url}/v1/subscribers/reader`, { headers: { Authorization: `Bearer ${KEY}` } });
    const { timeline } = sb.stats();
    expect(timeline.bucketMs).toBe(1000);
    expect(Math.abs(timeline.startedAtMs - Date.now())).toBeLessThan(60_000);
    const sum = (field: 'requests' | 'admitted' | 'rateLimited' | 'succeeded') => timeline.buckets.reduce((n, b) => n + b[field], 0);
    expect({ requests: sum('requests'), admitted: sum('admitted'), rateLimited: sum('rateLimited'), succeeded: sum('succeeded') }).toEqual({
      requests: 6,
      admitted: 3,
      rateLimited: 3,
      succeeded: 3,
    });
    expect(timeline.buckets.every((b) => b.perMinute === 3 && b.perSecond === 0)).toBe(true);
    expect(timeline.buckets.map((b) => b.second)).toEqual([...timeline.buckets.map((b) => b.second)].sort((a, b) => a - b));
    const viaHttp = await admin(sb, 'GET', '/_sandbox/stats');
    expect(viaHttp.body.timeline).toEqual(timeline);

    sb.reset();
    expect(sb.stats().timeline.buckets).toEqual([]);
    // reset also empties the window: the budget is whole again.
    expect(statuses(await burst(sb, 4, 'r'))).toEqual([200, 200, 200, 429]);
  });
});

describe("others' traffic and answers RevenueCat has sent before (issue 18)", () => {
  it('the background share follows its pattern, and what is left of a limit is rounded, never below one request', async () => {
    const { backgroundShareAt, leftOf, parseBackgroundText } = await import('../src/sandbox/background.js');
    const wave = { pattern: 'wave' as const, share: 0.5, baseShare: 0, periodSeconds: 120, burstSeconds: 5 };
    expect(backgroundShareAt(wave, 0)).toBeCloseTo(0, 9);
    expect(backgroundShareAt(wave, 60)).toBeCloseTo(0.5, 9);
    expect(backgroundShareAt(wave, 120)).toBeCloseTo(0, 9);
    const bursts = { pattern: 'bursts' as const, share: 0.6, baseShare: 0.1, periodSeconds: 30, burstSeconds: 5 };
    expect([0, 4.9, 5, 29, 30].map((t) => backgroundShareAt(bursts, t))).toEqual([0.6, 0.6, 0.1, 0.1, 0.6]);
    expect(backgroundShareAt({ ...bursts, pattern: 'steady' }, 77)).toBe(0.6);
    expect(leftOf(50, 0.5)).toBe(25);
    expect(leftOf(3, 0.99)).toBe(1);
    expect(leftOf(0, 0.5)).toBe(0);
    expect(parseBackgroundText('wave:0.5:0:120')).toEqual({ pattern: 'wave', share: 0.5, baseShare: 0, periodSeconds: 120 });
    expect(parseBackgroundText('tide:1')).toMatch(/is not <steady\|wave\|bursts>/);
  });

  it("a steady share of others' traffic takes its part of each window, and shows in the usage announced", async () => {
    const sb = await start({ rateLimitPerSecond: 10, rateLimitWindow: 'fixed', rateLimitHeaders: 'all', backgroundTraffic: 'steady:0.4' as never });
    expect(sb.rateLimit().backgroundShare).toBe(0.4);
    sb.reset();
    const replies = await burst(sb, 8, 'bg');
    // 10 a second, 4 of them taken by others: 6 left (the burst takes well under a second on loopback).
    expect(statuses(replies).filter((s) => s === 200)).toHaveLength(6);
    expect(Number(replies[0]!.headers.get('revenuecat-rate-limit-current-usage'))).toBeGreaterThanOrEqual(Math.round(0.4 * 600));
    expect(() => sb.configure({ backgroundTraffic: { pattern: 'steady', share: 2 } })).toThrow(/backgroundTraffic/);
  });

  it('Retry-After in milliseconds; Is-Retryable: false (noretry); 529 while the token is processed (busy<N>)', async () => {
    const sb = await start({ rateLimitPerSecond: 1, rateLimitWindow: 'fixed', retryAfterUnit: 'milliseconds' });
    sb.reset();
    const [, refused] = await burst(sb, 2, 'ms');
    expect(refused!.status).toBe(429);
    expect(refused!.headers.get('retry-after')).toBe('1000');
    sb.configure({ rateLimitPerSecond: 0 });
    const noretry = await post(sb, 'nr', 'tok-sbx-noretry');
    expect(noretry.status).toBe(500);
    expect(noretry.headers.get('is-retryable')).toBe('false');
    const busy = [await post(sb, 'bz', 'tok-sbx-busy2'), await post(sb, 'bz', 'tok-sbx-busy2'), await post(sb, 'bz', 'tok-sbx-busy2')];
    expect(statuses(busy)).toEqual([529, 529, 200]);
    expect(busy[0]!.headers.get('retry-after')).toBe('1');
  });
});
