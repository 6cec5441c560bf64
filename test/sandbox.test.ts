import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_PRODUCT_ID, SandboxOptionsError, keyLabel, parseSandboxOptions, readDirective, startSandbox, type Sandbox, type SandboxOptions } from '../src/sandbox/index.js';

const KEY = 'appl_sandbox_key';
const NOW = Date.UTC(2025, 5, 15, 12, 0, 0);
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

async function start(options: SandboxOptions = {}): Promise<Sandbox> {
  sandbox = await startSandbox({ now: () => NOW, ...options });
  return sandbox;
}

interface Reply {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
}

async function toReply(res: Response): Promise<Reply> {
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body, text };
}

interface CallOptions {
  platform?: string | null;
  key?: string | null;
  authorization?: string;
  signal?: AbortSignal;
}

function headersFor(opts: CallOptions, json = true): Record<string, string> {
  const headers: Record<string, string> = json ? { 'Content-Type': 'application/json' } : {};
  const key = opts.key === undefined ? KEY : opts.key;
  if (opts.authorization !== undefined) headers.Authorization = opts.authorization;
  else if (key !== null) headers.Authorization = `Bearer ${key}`;
  const platform = opts.platform === undefined ? 'ios' : opts.platform;
  if (platform !== null) headers['X-Platform'] = platform;
  return headers;
}

async function post(sb: Sandbox, body: unknown, opts: CallOptions = {}): Promise<Reply> {
  const res = await fetch(`${sb.url}/v1/receipts`, {
    method: 'POST',
    headers: headersFor(opts),
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: opts.signal,
  });
  return toReply(res);
}

async function getSubscriber(sb: Sandbox, id: string, opts: CallOptions = {}): Promise<Reply> {
  const res = await fetch(`${sb.url}/v1/subscribers/${encodeURIComponent(id)}`, { headers: headersFor(opts, false), signal: opts.signal });
  return toReply(res);
}

/** A body the pipeline would send: both import flags false. */
function receipt(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { app_user_id: 'user_1', fetch_token: 'receipt-abc', create_events: false, should_update_last_seen_fields: false, ...overrides };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('auth', () => {
  it('answers 401 7224 without an Authorization header and 7225 for an unknown key', async () => {
    const sb = await start();
    const missing = await post(sb, receipt(), { key: null });
    expect(missing.status).toBe(401);
    expect(missing.body.code).toBe(7224);

    const basic = await post(sb, receipt(), { authorization: 'Basic abc' });
    expect(basic.status).toBe(401);
    expect(basic.body.code).toBe(7224);

    const wrong = await post(sb, receipt(), { key: 'appl_other' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe(7225);
    expect(wrong.body.message).toMatch(/Invalid API key/);

    const get = await getSubscriber(sb, 'user_1', { key: 'appl_other' });
    expect(get.status).toBe(401);
    expect(get.body.code).toBe(7225);

    expect(sb.stats().byCode).toMatchObject({ '7224': 2, '7225': 2 });
    expect(sb.peekSubscriber('user_1')).toBeUndefined();
  });

  it('checks auth before anything else (a bad key with a bad body is still a 401)', async () => {
    const sb = await start();
    const reply = await post(sb, 'not json', { key: 'nope', platform: null });
    expect(reply.status).toBe(401);
    expect(reply.body.code).toBe(7225);
  });
});

describe('POST /v1/receipts validation', () => {
  const longId = 'u'.repeat(101);
  const cases: [string, string | null, unknown, number, number, RegExp?][] = [
    ['missing X-Platform', null, receipt(), 400, 7000],
    ['unknown X-Platform', 'windows', receipt(), 400, 7000],
    ['body not JSON', 'ios', 'not json', 400, 7226],
    ['body a JSON array', 'ios', [receipt()], 400, 7226],
    ['empty app_user_id', 'ios', receipt({ app_user_id: '' }), 400, 7220],
    ['missing app_user_id', 'ios', receipt({ app_user_id: undefined }), 400, 7220],
    ['app_user_id with a slash', 'ios', receipt({ app_user_id: 'a/b' }), 400, 7256],
    ['blocklisted app_user_id', 'ios', receipt({ app_user_id: 'anonymous' }), 400, 7256],
    ['app_user_id over 100 characters', 'ios', receipt({ app_user_id: longId }), 400, 7256],
    ['missing fetch_token', 'ios', receipt({ fetch_token: undefined }), 400, 7226, /fetch_token/],
    ['empty fetch_token', 'ios', receipt({ fetch_token: '' }), 400, 7226, /fetch_token/],
    ['Google without product_id', 'android', receipt(), 400, 7106],
    ['price without currency', 'ios', receipt({ price: 9.99 }), 400, 7226, /currency/],
    ['currency without price', 'ios', receipt({ currency: 'USD' }), 400, 7226, /price/],
    ['currency not ISO 4217', 'ios', receipt({ price: 9.99, currency: 'XYZ' }), 400, 7226, /ISO 4217/],
    ['negative price', 'ios', receipt({ price: -1, currency: 'USD' }), 400, 7226, /price/],
    ['price as a string', 'ios', receipt({ price: '9.99', currency: 'USD' }), 400, 7226, /price/],
    ['negative introductory_price', 'ios', receipt({ introductory_price: -0.5 }), 400, 7226, /introductory_price/],
    ['payment_mode out of range', 'ios', receipt({ payment_mode: 3 }), 400, 7105],
    ['payment_mode on Google', 'android', receipt({ product_id: 'p', payment_mode: 1 }), 400, 7226, /payment_mode/],
    ['price on Stripe', 'stripe', receipt({ fetch_token: 'sub_1', price: 1, currency: 'USD' }), 400, 7226, /price/],
    ['product_id on Stripe', 'stripe', receipt({ fetch_token: 'sub_1', product_id: 'p' }), 400, 7226, /product_id/],
    ['observer_mode on Amazon', 'amazon', receipt({ store_user_id: 's', observer_mode: true }), 400, 7226, /observer_mode/],
    ['normal_duration not ISO 8601', 'ios', receipt({ normal_duration: 'one month' }), 400, 7226, /normal_duration/],
    ['Amazon without store_user_id', 'amazon', receipt(), 400, 7226, /store_user_id/],
    ['Stripe token without sub_/cs_', 'stripe', receipt({ fetch_token: 'tok_123' }), 400, 7103],
    ['create_events not a boolean', 'ios', receipt({ create_events: 'false' }), 400, 7226, /create_events/],
  ];

  it.each(cases)('%s → %i / %i', async (_name, platform, body, status, code, message) => {
    const sb = await start();
    const reply = await post(sb, body, { platform });
    expect(reply.status).toBe(status);
    expect(reply.body.code).toBe(code);
    if (message) expect(reply.body.message).toMatch(message);
    expect(sb.stats().successfulReceipts).toBe(0);
    expect(sb.stats().subscribers).toBe(0);
  });

  it('reports each bad attribute in attribute_errors', async () => {
    const sb = await start();
    const reply = await post(
      sb,
      receipt({
        attributes: {
          $email: { value: 'a@b.c', updated_at_ms: 1 },
          $displayName: { value: 42, updated_at_ms: 1 },
          plan: { value: 'gold' },
          tier: 'x',
        },
      }),
    );
    expect(reply.status).toBe(400);
    expect(reply.body.code).toBe(7226);
    const names = (reply.body.attribute_errors as { key_name: string; message: string }[]).map((e) => e.key_name).sort();
    expect(names).toEqual(['$displayName', 'plan', 'tier']);
  });

  it('accepts a well-formed body for every store', async () => {
    const sb = await start();
    const ok = [
      await post(
        sb,
        receipt({
          app_user_id: 'ios_user',
          price: 9.99,
          currency: 'EUR',
          payment_mode: 2,
          introductory_price: 0,
          normal_duration: 'P1M',
          trial_duration: 'P1W',
          store_country: 'FR',
          subscription_group_id: 'g1',
          is_restore: false,
          ip_address: '1.2.3.4',
          attributes: { $email: { value: 'a@b.c', updated_at_ms: 1700000000000 } },
        }),
      ),
      await post(sb, receipt({ app_user_id: 'google_user', product_id: 'gold', price: 1, currency: 'USD' }), { platform: 'android' }),
      await post(sb, receipt({ app_user_id: 'amazon_user', store_user_id: 'amzn1' }), { platform: 'amazon' }),
      await post(sb, receipt({ app_user_id: 'stripe_user', fetch_token: 'cs_test_1' }), { platform: 'stripe' }),
    ];
    expect(ok.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(sb.stats().successfulReceipts).toBe(4);
  });
});

describe('GET /v1/subscribers/{app_user_id}', () => {
  it('creates on first read (201), then finds (200)', async () => {
    const sb = await start();
    expect(sb.peekSubscriber('reader')).toBeUndefined();
    const first = await getSubscriber(sb, 'reader');
    expect(first.status).toBe(201);
    expect(first.body.request_date_ms).toBe(NOW);
    expect(first.body.request_date).toBe(iso(NOW));
    expect(first.body.subscriber).toMatchObject({
      original_app_user_id: 'reader',
      first_seen: iso(NOW),
      last_seen: iso(NOW),
      original_purchase_date: null,
      original_application_version: null,
      management_url: null,
      entitlements: {},
      subscriptions: {},
      non_subscriptions: {},
      other_purchases: {},
    });
    expect(first.body.subscriber).not.toHaveProperty('subscriber_attributes');
    const second = await getSubscriber(sb, 'reader');
    expect(second.status).toBe(200);
    expect(sb.stats().byPath['GET /v1/subscribers/{app_user_id}']).toBe(2);
    expect(sb.stats().byStatus).toMatchObject({ '201': 1, '200': 1 });
  });

  it('URL-decodes the id and applies the App User ID rules', async () => {
    const sb = await start();
    const spaced = await getSubscriber(sb, 'user with space é');
    expect(spaced.status).toBe(201);
    expect(spaced.body.subscriber.original_app_user_id).toBe('user with space é');
    const slash = await getSubscriber(sb, 'a/b'); // sent as a%2Fb
    expect(slash.status).toBe(400);
    expect(slash.body.code).toBe(7256);
    const badPlatform = await getSubscriber(sb, 'x', { platform: 'windows' });
    expect(badPlatform.body.code).toBe(7000);
  });

  it('shows subscriber_attributes only to a secret key', async () => {
    const sb = await start({ apiKeys: [KEY, 'sk_secret'] });
    const attributes = { $email: { value: 'a@b.c', updated_at_ms: 1700000000000 } };
    const publicView = await post(sb, receipt({ attributes }));
    expect(publicView.status).toBe(200);
    expect(publicView.body.subscriber).not.toHaveProperty('subscriber_attributes');
    const secretView = await getSubscriber(sb, 'user_1', { key: 'sk_secret' });
    expect(secretView.status).toBe(200);
    expect(secretView.body.subscriber.subscriber_attributes).toEqual(attributes);
  });

  it('moves last_seen on GET only with X-Platform, and on POST only when should_update_last_seen_fields is not false', async () => {
    let now = NOW;
    const sb = await start({ now: () => now });
    await post(sb, receipt());
    now += 1000;
    await post(sb, receipt({ fetch_token: 'second' }));
    expect(sb.peekSubscriber('user_1')?.last_seen).toBe(iso(NOW));
    now += 1000;
    await getSubscriber(sb, 'user_1', { platform: null });
    expect(sb.peekSubscriber('user_1')?.last_seen).toBe(iso(NOW));
    await getSubscriber(sb, 'user_1', { platform: 'ios' });
    expect(sb.peekSubscriber('user_1')?.last_seen).toBe(iso(NOW + 2000));
    now += 1000;
    await post(sb, receipt({ fetch_token: 'third', should_update_last_seen_fields: true }));
    expect(sb.peekSubscriber('user_1')?.last_seen).toBe(iso(NOW + 3000));
    expect(sb.peekSubscriber('user_1')?.first_seen).toBe(iso(NOW));
  });
});

describe('fetch token directives', () => {
  it('reads the first sbx directive anywhere in the token', () => {
    expect(readDirective('plain-receipt')).toMatchObject({ name: 'none' });
    expect(readDirective('MIIT...sbx-expired...')).toMatchObject({ name: 'expired' });
    expect(readDirective('abc.SBX_Flaky3.sbx-invalid')).toMatchObject({ name: 'flaky', count: 3, label: 'flaky3' });
    expect(readDirective('x sbx.whatever')).toMatchObject({ name: 'unknown', label: 'unknown:whatever' });
    expect(readDirective('sbxexpired')).toMatchObject({ name: 'none' });
  });

  it('no directive and sbx-active: an active subscription granting premium', async () => {
    const sb = await start();
    const plain = await post(sb, receipt({ app_user_id: 'u_plain', fetch_token: 'MIIT-real-looking' }));
    expect(plain.status).toBe(200);
    expect(plain.headers.get('x-sandbox-directive')).toBe('none');
    const sub = plain.body.subscriber;
    expect(Object.keys(sub.subscriptions)).toEqual([DEFAULT_PRODUCT_ID]);
    expect(sub.subscriptions[DEFAULT_PRODUCT_ID]).toMatchObject({
      purchase_date: iso(NOW - DAY),
      expires_date: iso(NOW + 30 * DAY),
      store: 'app_store',
      is_sandbox: false,
      ownership_type: 'PURCHASED',
      period_type: 'normal',
    });
    expect(sub.entitlements.premium).toMatchObject({ expires_date: iso(NOW + 30 * DAY), product_identifier: DEFAULT_PRODUCT_ID });
    expect(sub.management_url).toMatch(/apple/);
    expect(sub.original_purchase_date).toBe(iso(NOW - DAY));

    const active = await post(sb, receipt({ app_user_id: 'u_active', fetch_token: 'sbx-active-1', product_id: 'pro.yearly' }));
    expect(active.status).toBe(200);
    expect(active.body.subscriber.subscriptions['pro.yearly'].expires_date).toBe(iso(NOW + 30 * DAY));
  });

  it('maps the platform to the store', async () => {
    const sb = await start();
    const cases: [string, Record<string, unknown>, string][] = [
      ['android', { product_id: 'p' }, 'play_store'],
      ['macos', {}, 'mac_app_store'],
      ['amazon', { store_user_id: 's' }, 'amazon'],
      ['stripe', { fetch_token: 'sub_x' }, 'stripe'],
    ];
    for (const [platform, extra, store] of cases) {
      const reply = await post(sb, receipt({ app_user_id: `u_${platform}`, ...extra }), { platform });
      expect(reply.status).toBe(200);
      const subs: { store: string }[] = Object.values(reply.body.subscriber.subscriptions);
      expect(subs.map((s) => s.store)).toEqual([store]);
    }
  });

  it('sbx-expired: purchase 2023-01-01, expired 2023-02-01', async () => {
    const sb = await start();
    const reply = await post(sb, receipt({ fetch_token: 'sbx-expired', product_id: 'm' }));
    expect(reply.status).toBe(200);
    expect(reply.body.subscriber.subscriptions.m).toMatchObject({ purchase_date: '2023-01-01T00:00:00Z', expires_date: '2023-02-01T00:00:00Z' });
    expect(reply.body.subscriber.entitlements.premium.expires_date).toBe('2023-02-01T00:00:00Z');
    expect(reply.body.subscriber.management_url).toBeNull();
  });

  it('sbx-lifetime: a non-subscription granting premium forever', async () => {
    const sb = await start();
    const reply = await post(sb, receipt({ fetch_token: 'sbx-lifetime', product_id: 'forever' }));
    expect(reply.status).toBe(200);
    const sub = reply.body.subscriber;
    expect(sub.subscriptions).toEqual({});
    expect(sub.non_subscriptions.forever).toHaveLength(1);
    expect(sub.non_subscriptions.forever[0]).toMatchObject({ store: 'app_store', is_sandbox: false });
    expect(sub.entitlements.premium).toMatchObject({ expires_date: null, product_identifier: 'forever' });
    // Re-sending the same receipt is harmless, as with RevenueCat's deduplication.
    const again = await post(sb, receipt({ fetch_token: 'sbx-lifetime', product_id: 'forever' }));
    expect(again.body.subscriber.non_subscriptions.forever).toHaveLength(1);
  });

  const errorCases: [string, string, number, number][] = [
    ['invalid', 'tok.sbx-invalid', 400, 7103],
    ['inuse', 'tok.sbx-inuse', 400, 7102],
    ['otheruser', 'tok.sbx-otheruser', 400, 7852],
    ['storedown', 'tok.sbx-storedown', 500, 7101],
    ['quota', 'tok.sbx-quota', 500, 7229],
    ['toomany', 'tok.sbx-toomany', 400, 7636],
    ['missingproduct', 'tok.sbx-missingproduct', 400, 7712],
    ['badkey', 'tok.sbx-badkey', 401, 7225],
  ];
  it.each(errorCases)('sbx-%s → %s', async (name, token, status, code) => {
    const sb = await start();
    const reply = await post(sb, receipt({ fetch_token: token }));
    expect(reply.status).toBe(status);
    expect(reply.body.code).toBe(code);
    expect(reply.headers.get('x-sandbox-directive')).toBe(name);
    expect(sb.peekSubscriber('user_1')).toBeUndefined();
    expect(sb.stats().byDirective[name]).toBe(1);
  });

  it('sbx-noproduct: 200 but the product is not on the subscriber', async () => {
    const sb = await start();
    const reply = await post(sb, receipt({ fetch_token: 'sbx-noproduct', product_id: 'ghost' }));
    expect(reply.status).toBe(200);
    expect(reply.body.subscriber.subscriptions).toEqual({});
    expect(reply.body.subscriber.non_subscriptions).toEqual({});
    expect(reply.body.subscriber.entitlements).toEqual({});
    expect(sb.peekSubscriber('user_1')).toBeDefined();
  });

  it('sbx-transfer: the posting user is an alias of orig_<id> and holds the product', async () => {
    const sb = await start();
    const reply = await post(sb, receipt({ fetch_token: 'sbx-transfer', product_id: 'moved' }));
    expect(reply.status).toBe(200);
    expect(reply.body.subscriber.original_app_user_id).toBe('orig_user_1');
    expect(reply.body.subscriber.subscriptions).toHaveProperty('moved');
    const viaOriginal = await getSubscriber(sb, 'orig_user_1');
    expect(viaOriginal.status).toBe(200);
    expect(viaOriginal.body.subscriber.subscriptions).toHaveProperty('moved');
    expect(sb.stats().subscribers).toBe(1);
  });

  it('keeps subscribers across requests: a second receipt adds to the same subscriber', async () => {
    const sb = await start();
    await post(sb, receipt({ fetch_token: 't1', product_id: 'a' }));
    const second = await post(sb, receipt({ fetch_token: 't2', product_id: 'b' }));
    expect(Object.keys(second.body.subscriber.subscriptions).sort()).toEqual(['a', 'b']);
    expect(sb.stats().subscribers).toBe(1);
  });

  it('sbx-flaky<N>: fails N times with 500/7101 for that exact token, then succeeds', async () => {
    const sb = await start();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(sb, receipt({ fetch_token: 'r.sbx-flaky2' }))).status);
    expect(statuses).toEqual([500, 500, 200, 200]);
    expect(sb.stats().byCode['7101']).toBe(2);

    // Another token with the same directive has its own count; no number means once.
    expect((await post(sb, receipt({ app_user_id: 'u2', fetch_token: 'other.sbx-flaky2' }))).status).toBe(500);
    expect((await post(sb, receipt({ app_user_id: 'u3', fetch_token: 'once.sbx-flaky' }))).status).toBe(500);
    expect((await post(sb, receipt({ app_user_id: 'u3', fetch_token: 'once.sbx-flaky' }))).status).toBe(200);
  });
});

describe('rate limit', () => {
  it('answers 429 with Retry-After once the per-second budget is spent, and always sends the limit headers', async () => {
    // v1 headers are opt-in (RevenueCat publishes no v1 limit): rateLimitHeaders 'all' (or true) turns them on.
    const sb = await start({ rateLimitPerSecond: 2, rateLimitHeaders: true });
    const first = await post(sb, receipt({ fetch_token: 'a' }));
    const second = await getSubscriber(sb, 'someone');
    const third = await post(sb, receipt({ fetch_token: 'b' }));
    expect(first.status).toBe(200);
    expect(second.status).toBe(201);
    expect(third.status).toBe(429);
    expect(third.body.code).toBe(7429);
    const retryAfter = third.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    for (const r of [first, second, third]) expect(r.headers.get('revenuecat-rate-limit-current-limit')).toBe('120');
    expect(first.headers.get('revenuecat-rate-limit-current-usage')).toBe('1');
    expect(third.headers.get('revenuecat-rate-limit-current-usage')).toBe('2');
    expect(sb.stats().rateLimited).toBe(1);

    await sleep(Number(retryAfter) * 1000 + 50);
    expect((await post(sb, receipt({ fetch_token: 'b' }))).status).toBe(200);
  });

  it('sends no rate-limit headers when unlimited', async () => {
    const sb = await start();
    const reply = await post(sb, receipt());
    expect(reply.headers.get('revenuecat-rate-limit-current-limit')).toBeNull();
  });
});

describe('per-user in-flight lock', () => {
  it('rejects a concurrent request for the same user with 429/7638 while the first is in its latency', async () => {
    const sb = await start({ latencyMs: 150 });
    const replies = await Promise.all([post(sb, receipt({ fetch_token: 'a' })), post(sb, receipt({ fetch_token: 'b' }))]);
    const byStatus = [...replies].sort((x, y) => x.status - y.status);
    expect(byStatus.map((r) => r.status)).toEqual([200, 429]);
    expect(byStatus[1]?.body.code).toBe(7638);
    expect(byStatus[1]?.headers.get('retry-after')).toBe('1');
    const stats = sb.stats();
    expect(stats.overlaps).toBe(1);
    expect(stats.maxInFlightPerUser).toBe(2);
    expect(stats.rateLimited).toBe(0);
    expect(stats.inFlight).toBe(0);
    // The lock is gone once the first answer is out.
    expect((await post(sb, receipt({ fetch_token: 'b' }))).status).toBe(200);
  });

  it('lets different users run concurrently', async () => {
    const sb = await start({ latencyMs: 100 });
    const replies = await Promise.all(['u1', 'u2', 'u3'].map((id) => post(sb, receipt({ app_user_id: id }))));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(sb.stats().overlaps).toBe(0);
    expect(sb.stats().maxInFlightPerUser).toBe(1);
  });
});

describe('faults', () => {
  it('fault5xxRate 1: every authenticated request gets a 500/502/503; a 500 carries code 7110', async () => {
    const sb = await start({ fault5xxRate: 1 });
    const statuses = new Set<number>();
    for (let i = 0; i < 12; i++) {
      const reply = await post(sb, receipt({ fetch_token: `t${i}` }));
      statuses.add(reply.status);
      if (reply.status === 500) expect(reply.body.code).toBe(7110);
      else expect(reply.body).toBeUndefined(); // proxy-style HTML, not JSON
    }
    expect([...statuses].every((s) => [500, 502, 503].includes(s))).toBe(true);
    expect(statuses.size).toBeGreaterThan(1);
    expect(sb.stats().faults['5xx']).toBe(12);
    expect(sb.stats().successfulReceipts).toBe(0);
    // Faults come after auth.
    expect((await post(sb, receipt(), { key: 'bad' })).status).toBe(401);
  });

  it('is deterministic for a seed', async () => {
    const run = async (seed: number) => {
      const sb = await startSandbox({ fault5xxRate: 0.5, seed });
      try {
        const out: number[] = [];
        for (let i = 0; i < 16; i++) out.push((await post(sb, receipt({ app_user_id: `u${i}` }))).status);
        return out;
      } finally {
        await sb.close();
      }
    };
    const a = await run(7);
    expect(await run(7)).toEqual(a);
    expect(a).toContain(200);
    expect(a.some((s) => s >= 500)).toBe(true);
  });

  it('resetRate 1: the socket is destroyed without an answer', async () => {
    const sb = await start({ resetRate: 1 });
    await expect(post(sb, receipt())).rejects.toThrow();
    expect(sb.stats().faults.reset).toBe(1);
    expect(sb.stats().byStatus).toEqual({});
  });

  it('hangRate 1: no answer (client times out), and close() is still prompt', async () => {
    const sb = await start({ hangRate: 1, hangMs: 30_000 });
    const timedOut = post(sb, receipt(), { signal: AbortSignal.timeout(150) });
    await expect(timedOut).rejects.toMatchObject({ name: 'TimeoutError' });
    const pending = post(sb, receipt({ app_user_id: 'u2' }));
    const settled = pending.then(
      () => 'answered',
      () => 'rejected',
    );
    await sleep(50);
    expect(sb.stats().faults.hang).toBe(2);
    const t0 = Date.now();
    await sb.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await settled).toBe('rejected');
  });
});

describe('stats', () => {
  it('counts requests whose create_events or should_update_last_seen_fields is not exactly false', async () => {
    const sb = await start();
    await post(sb, receipt({ fetch_token: 'a' }));
    expect(sb.stats().flagsNotFalse).toBe(0);
    await post(sb, receipt({ fetch_token: 'b', create_events: undefined }));
    await post(sb, receipt({ fetch_token: 'c', should_update_last_seen_fields: true }));
    await post(sb, receipt({ fetch_token: 'd', create_events: 'false' })); // rejected (7226) but still seen
    await post(sb, receipt({ fetch_token: 'e' }), { key: 'bad' }); // flags false: not counted even on a 401
    expect(sb.stats().flagsNotFalse).toBe(3);
  });

  it('counts POSTs per (app_user_id, fetch_token)', async () => {
    const sb = await start();
    await post(sb, receipt({ fetch_token: 'x' }));
    await post(sb, receipt({ fetch_token: 'x' }));
    await post(sb, receipt({ fetch_token: 'y.sbx-invalid' }));
    expect(sb.receiptPostCount('user_1', 'x')).toEqual({ posts: 2, successes: 2 });
    expect(sb.receiptPostCount('user_1', 'y.sbx-invalid')).toEqual({ posts: 1, successes: 0 });
    expect(sb.receiptPostCount('user_1', 'never')).toEqual({ posts: 0, successes: 0 });
    expect(sb.stats().receiptPosts).toEqual({ distinct: 2, total: 3, maxPerReceipt: 2, maxSuccessfulPerReceipt: 2 });
    const viaHttp = await (await fetch(`${sb.url}/_sandbox/receipt-posts?app_user_id=user_1&fetch_token=x`)).json();
    expect(viaHttp).toEqual({ app_user_id: 'user_1', fetch_token: 'x', posts: 2, successes: 2 });
    const all = (await (await fetch(`${sb.url}/_sandbox/receipt-posts`)).json()) as { receipts: unknown[] };
    expect(all.receipts).toHaveLength(2);
  });

  it('has the documented shape, is JSON, and matches GET /_sandbox/stats', async () => {
    const sb = await start();
    await post(sb, receipt());
    await getSubscriber(sb, 'reader');
    const unknown = await toReply(await fetch(`${sb.url}/v2/nothing`, { headers: headersFor({}) }));
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe(7404);

    const stats = sb.stats();
    expect(JSON.parse(JSON.stringify(stats))).toEqual(stats);
    expect(stats).toEqual({
      requests: 3,
      byStatus: { '200': 1, '201': 1, '404': 1 },
      byPath: { 'POST /v1/receipts': 1, 'GET /v1/subscribers/{app_user_id}': 1, unknown: 1 },
      byCode: { '7404': 1 },
      byDirective: { none: 1 },
      overlaps: 0,
      maxInFlightPerUser: 1,
      inFlight: 0,
      flagsNotFalse: 0,
      receiptPosts: { distinct: 1, total: 1, maxPerReceipt: 1, maxSuccessfulPerReceipt: 1 },
      faults: { '5xx': 0, reset: 0, hang: 0 },
      rateLimited: 0,
      successfulReceipts: 1,
      subscribers: 2,
      v2: { requests: 0, rateLimited: 0, byType: {} },
      byKey: { [keyLabel(KEY)]: { platforms: ['*'], requests: 2, accepted: 2, unauthorized: 0, rateLimited: 0 } },
      timeline: {
        startedAtMs: expect.any(Number),
        bucketMs: 1000,
        buckets: [{ second: 0, requests: 2, admitted: 2, rateLimited: 0, overlaps: 0, succeeded: 1, perSecond: 0, perMinute: 0 }],
      },
      transfers: 0,
      // The iOS test token is no App Store receipt: counted unread and answered by the token scheme.
      appleReceipts: { receipts: 0, signedTransactions: 0, unread: 1, purchases: 0 },
      appStoreServerApi: {
        requests: 0,
        byStatus: {},
        byErrorCode: {},
        byBasePath: {},
        found: 0,
        unauthorized: 0,
        unauthorizedBy: {},
        rateLimited: 0,
        faults: 0,
        tokens: 0,
        byBundle: {},
        maxLookupsPerTransaction: 0,
      },
    });
    const viaHttp = await (await fetch(`${sb.url}/_sandbox/stats`)).json();
    expect(viaHttp).toEqual(stats);
    // Admin calls are not counted as API traffic.
    expect(sb.stats().requests).toBe(3);
  });
});

describe('admin and live configuration', () => {
  it('configure() swaps API keys live (a revoked key)', async () => {
    const sb = await start();
    expect((await post(sb, receipt({ fetch_token: 'a' }))).status).toBe(200);
    sb.configure({ apiKeys: ['appl_new_key'] });
    const revoked = await post(sb, receipt({ fetch_token: 'b' }));
    expect(revoked.status).toBe(401);
    expect(revoked.body.code).toBe(7225);
    expect((await post(sb, receipt({ fetch_token: 'b' }), { key: 'appl_new_key' })).status).toBe(200);
  });

  it('configure() validates, and refuses port/host changes', async () => {
    const sb = await start();
    expect(() => sb.configure({ fault5xxRate: 2 })).toThrow(SandboxOptionsError);
    expect(() => sb.configure({ port: 1234 })).toThrow(/cannot be changed/);
    expect(() => sb.configure({ latencyMs: -1 })).toThrow(/latencyMs/);
    expect(sb.options().fault5xxRate).toBe(0);
  });

  it('POST /_sandbox/config changes knobs; POST /_sandbox/reset clears subscribers and counters', async () => {
    const sb = await start();
    const bad = await fetch(`${sb.url}/_sandbox/config`, { method: 'POST', body: JSON.stringify({ nonsense: 1 }) });
    expect(bad.status).toBe(400);
    const ok = await fetch(`${sb.url}/_sandbox/config`, { method: 'POST', body: JSON.stringify({ apiKeys: ['appl_k2'], latencyMs: 5 }) });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { options: { latencyMs: number } }).options.latencyMs).toBe(5);
    expect((await post(sb, receipt())).status).toBe(401);
    expect((await post(sb, receipt(), { key: 'appl_k2' })).status).toBe(200);

    const peek = await fetch(`${sb.url}/_sandbox/subscribers/user_1`);
    expect(peek.status).toBe(200);
    expect((await fetch(`${sb.url}/_sandbox/subscribers/nobody`)).status).toBe(404);
    // Peeking did not create anyone.
    expect(sb.stats().subscribers).toBe(1);

    const reset = await fetch(`${sb.url}/_sandbox/reset`, { method: 'POST' });
    expect(reset.status).toBe(200);
    expect(sb.stats().requests).toBe(0);
    expect(sb.stats().subscribers).toBe(0);
    expect(sb.peekSubscriber('user_1')).toBeUndefined();
    expect(sb.options().apiKeys).toEqual(['appl_k2']);
  });

  it('sb.reset() restarts flaky counts too', async () => {
    const sb = await start();
    expect((await post(sb, receipt({ fetch_token: 'sbx-flaky1' }))).status).toBe(500);
    expect((await post(sb, receipt({ fetch_token: 'sbx-flaky1' }))).status).toBe(200);
    sb.reset();
    expect((await post(sb, receipt({ fetch_token: 'sbx-flaky1' }))).status).toBe(500);
  });
});

describe('options parsing (for a CLI)', () => {
  it('coerces flag strings and applies nothing it was not given', () => {
    expect(parseSandboxOptions({ port: '8080', rateLimitPerSecond: '20', apiKeys: 'appl_a, sk_b', fault5xxRate: '0.1' })).toEqual({
      port: 8080,
      rateLimitPerSecond: 20,
      apiKeys: ['appl_a', 'sk_b'],
      fault5xxRate: 0.1,
    });
  });

  it('rejects bad values and unknown knobs', () => {
    expect(() => parseSandboxOptions({ resetRate: 1.5 })).toThrow(/resetRate/);
    expect(() => parseSandboxOptions({ latency: 5 })).toThrow(SandboxOptionsError);
    expect(() => parseSandboxOptions({ port: 'abc' })).toThrow(/port/);
  });
});

describe('v2 reads (GET /v2/projects/{project_id}/customers/…)', () => {
  const SECRET = 'sk_sandbox_secret';
  const PROJECT = 'proj_sandbox';

  async function v2(sb: Sandbox, path: string, opts: { key?: string | null; project?: string } = {}): Promise<Reply> {
    const key = opts.key === undefined ? SECRET : opts.key;
    const headers: Record<string, string> = key === null ? {} : { Authorization: `Bearer ${key}` };
    const res = await fetch(`${sb.url}/v2/projects/${opts.project ?? PROJECT}${path}`, { headers });
    return toReply(res);
  }
  const customerPath = (id: string, rest = '') => `/customers/${encodeURIComponent(id)}${rest}`;

  it('answers a customer the v1 POSTs created, with ids mapped through the catalog', async () => {
    const sb = await start({ apiKeys: [KEY, SECRET] });
    expect((await post(sb, receipt({ app_user_id: 'v2_user', fetch_token: 'tok-a', product_id: 'pro.monthly' }))).status).toBe(200);
    expect((await post(sb, receipt({ app_user_id: 'v2_user', fetch_token: 'tok-b.sbx-expired', product_id: 'old.monthly' }), { platform: 'android' })).status).toBe(200);

    const c = await v2(sb, customerPath('v2_user'));
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({
      object: 'customer',
      id: 'v2_user',
      project_id: PROJECT,
      first_seen_at: NOW,
      last_seen_at: NOW,
      active_entitlements: { object: 'list', next_page: null, url: `/v2/projects/${PROJECT}/customers/v2_user/active_entitlements` },
    });
    const [ent] = c.body.active_entitlements.items;
    expect(c.body.active_entitlements.items).toHaveLength(1);
    expect(ent).toEqual({ object: 'customer.active_entitlement', entitlement_id: expect.stringMatching(/^entl[0-9a-f]{10}$/), expires_at: NOW + 30 * DAY });

    const ents = await v2(sb, customerPath('v2_user', '/active_entitlements'));
    expect(ents.body).toEqual(c.body.active_entitlements);

    const subs = await v2(sb, customerPath('v2_user', '/subscriptions'));
    expect(subs.status).toBe(200);
    expect(subs.body).toMatchObject({ object: 'list', next_page: null, url: `/v2/projects/${PROJECT}/customers/v2_user/subscriptions` });
    const byStatus = Object.fromEntries(subs.body.items.map((i: { status: string }) => [i.status, i]));
    expect(byStatus.active).toMatchObject({
      object: 'subscription',
      customer_id: 'v2_user',
      product_id: expect.stringMatching(/^prod[0-9a-f]{10}$/),
      starts_at: NOW - DAY,
      current_period_ends_at: NOW + 30 * DAY,
      ends_at: null,
      gives_access: true,
      environment: 'production',
      store: 'app_store',
    });
    expect(byStatus.expired).toMatchObject({ status: 'expired', gives_access: false, current_period_ends_at: Date.UTC(2023, 1, 1), store: 'play_store' });

    const products = await v2(sb, '/products');
    expect(products.status).toBe(200);
    const storeIdOf = Object.fromEntries(products.body.items.map((p: { id: string; store_identifier: string }) => [p.id, p.store_identifier]));
    expect(storeIdOf[byStatus.active.product_id]).toBe('pro.monthly');
    expect(storeIdOf[byStatus.expired.product_id]).toBe('old.monthly');
    const entitlements = await v2(sb, '/entitlements');
    expect(entitlements.body.items).toEqual([expect.objectContaining({ object: 'entitlement', id: ent.entitlement_id, lookup_key: 'premium' })]);

    expect(sb.stats().byPath).toMatchObject({
      'GET /v2/projects/{project_id}/customers/{customer_id}': 1,
      'GET /v2/projects/{project_id}/customers/{customer_id}/active_entitlements': 1,
      'GET /v2/projects/{project_id}/customers/{customer_id}/subscriptions': 1,
      'GET /v2/projects/{project_id}/products': 1,
      'GET /v2/projects/{project_id}/entitlements': 1,
    });
    expect(sb.stats().v2.requests).toBe(5);
  });

  it('lists one-time purchases under /purchases, with a lifetime entitlement (expires_at null)', async () => {
    const sb = await start({ apiKeys: [KEY, SECRET] });
    await post(sb, receipt({ app_user_id: 'life', fetch_token: 'sbx-lifetime', product_id: 'forever' }));
    const c = await v2(sb, customerPath('life'));
    expect(c.body.active_entitlements.items).toEqual([expect.objectContaining({ expires_at: null })]);
    const bought = await v2(sb, customerPath('life', '/purchases'));
    expect(bought.body.items).toEqual([expect.objectContaining({ object: 'purchase', status: 'owned', environment: 'production', purchased_at: NOW - DAY })]);
    expect((await v2(sb, customerPath('life', '/subscriptions'))).body.items).toEqual([]);
  });

  it('never creates a customer or moves last_seen: 404 resource_missing for a missing one', async () => {
    let now = NOW;
    const sb = await start({ apiKeys: [KEY, SECRET], now: () => now });
    await post(sb, receipt({ app_user_id: 'seen' }));
    now += 60_000;
    for (const rest of ['', '/active_entitlements', '/subscriptions', '/purchases']) {
      expect((await v2(sb, customerPath('seen', rest))).status).toBe(200);
      const missing = await v2(sb, customerPath('ghost', rest));
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({ object: 'error', type: 'resource_missing', retryable: false });
      expect(typeof missing.body.message).toBe('string');
    }
    expect(sb.peekSubscriber('ghost')).toBeUndefined();
    expect(sb.stats().subscribers).toBe(1);
    expect(sb.peekSubscriber('seen')?.last_seen).toBe(iso(NOW));
    expect((await v2(sb, customerPath('seen'))).body.last_seen_at).toBe(NOW);
    // Contrast: the v1 GET creates.
    expect((await getSubscriber(sb, 'ghost', { platform: null })).status).toBe(201);
    expect(sb.stats().subscribers).toBe(2);
  });

  it('needs a secret key: public → 403 authorization_error, unknown/missing → 401 authentication_error; wrong project → 404', async () => {
    const sb = await start({ apiKeys: [KEY, SECRET] });
    await post(sb, receipt());
    const pub = await v2(sb, customerPath('user_1'), { key: KEY });
    expect(pub.status).toBe(403);
    expect(pub.body).toMatchObject({ object: 'error', type: 'authorization_error', retryable: false });
    const unknown = await v2(sb, customerPath('user_1'), { key: 'sk_unknown' });
    expect(unknown.status).toBe(401);
    expect(unknown.body.type).toBe('authentication_error');
    expect((await v2(sb, customerPath('user_1'), { key: null })).body.type).toBe('authentication_error');
    const project = await v2(sb, customerPath('user_1'), { project: 'proj_other' });
    expect(project.status).toBe(404);
    expect(project.body).toMatchObject({ type: 'resource_missing', param: 'project_id' });
    const bad = await v2(sb, customerPath('a/b'));
    expect(bad.status).toBe(400);
    expect(bad.body.type).toBe('parameter_error');
    expect(sb.stats().v2.byType).toEqual({ authorization_error: 1, authentication_error: 2, resource_missing: 1, parameter_error: 1 });
  });

  it('takes projectId as a knob', async () => {
    const sb = await start({ apiKeys: [SECRET], projectId: 'proj_abc' });
    expect((await v2(sb, customerPath('x'), { project: 'proj_abc' })).body.type).toBe('resource_missing');
    expect((await v2(sb, customerPath('x'), { project: 'proj_abc' })).body.param).toBe('customer_id');
    expect((await v2(sb, customerPath('x'))).body.param).toBe('project_id');
  });

  it('rate-limits the Customer Information domain on its own: 429 rate_limit_error with backoff_ms, Retry-After and the headers', async () => {
    const sb = await start({ apiKeys: [KEY, SECRET], v2RateLimitPerMinute: 2, rateLimitPerSecond: 100 });
    await post(sb, receipt());
    const first = await v2(sb, customerPath('user_1'));
    const second = await v2(sb, customerPath('user_1', '/subscriptions'));
    const third = await v2(sb, customerPath('user_1', '/purchases'));
    expect([first.status, second.status, third.status]).toEqual([200, 200, 429]);
    expect(third.body).toMatchObject({ object: 'error', type: 'rate_limit_error', retryable: true });
    expect(third.body.backoff_ms).toBeGreaterThan(55_000);
    expect(third.body.backoff_ms).toBeLessThanOrEqual(60_000);
    expect(Number(third.headers.get('retry-after'))).toBe(Math.ceil(third.body.backoff_ms / 1000));
    expect(first.headers.get('revenuecat-rate-limit-current-limit')).toBe('2');
    expect(first.headers.get('revenuecat-rate-limit-current-usage')).toBe('1');
    expect(third.headers.get('revenuecat-rate-limit-current-usage')).toBe('2');
    // The catalog is another domain, and v1 has its own limiter.
    const products = await v2(sb, '/products');
    expect(products.status).toBe(200);
    expect(products.headers.get('revenuecat-rate-limit-current-limit')).toBe('60');
    expect((await getSubscriber(sb, 'user_1', { platform: null })).status).toBe(200);
    expect(sb.stats().v2.rateLimited).toBe(1);
    expect(sb.stats().rateLimited).toBe(0);
  });

  it('a shorter v2RateLimitWindowMs admits limit × window / 60 s per window; 0 turns the limit off', async () => {
    const sb = await start({ apiKeys: [SECRET], v2RateLimitPerMinute: 120, v2RateLimitWindowMs: 1000 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await v2(sb, customerPath('x'))).status);
    expect(statuses).toEqual([404, 404, 429]);
    const limited = await v2(sb, customerPath('x'));
    expect(limited.body.backoff_ms).toBeLessThanOrEqual(1000);
    await sleep(limited.body.backoff_ms + 20);
    expect((await v2(sb, customerPath('x'))).status).toBe(404);
    sb.configure({ v2RateLimitPerMinute: 0 });
    for (let i = 0; i < 5; i++) expect((await v2(sb, customerPath('x'))).status).toBe(404);
    expect((await v2(sb, customerPath('x'))).headers.get('revenuecat-rate-limit-current-limit')).toBeNull();
  });

  it('pages lists with next_page (v2PageSize or ?limit=)', async () => {
    const sb = await start({ apiKeys: [KEY, SECRET], v2PageSize: 2 });
    for (let i = 0; i < 5; i++) await post(sb, receipt({ app_user_id: 'many', fetch_token: `tok-${i}`, product_id: `p${i}` }));
    const seen: string[] = [];
    let next: string | null = `/v2/projects/${PROJECT}/customers/many/subscriptions`;
    let pages = 0;
    while (next !== null) {
      const reply = await toReply(await fetch(`${sb.url}${next}`, { headers: { Authorization: `Bearer ${SECRET}` } }));
      expect(reply.status).toBe(200);
      expect(reply.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...reply.body.items.map((i: { id: string }) => i.id));
      next = reply.body.next_page;
      pages++;
    }
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(5);
    expect((await v2(sb, customerPath('many', '/subscriptions?limit=10'))).body.items).toHaveLength(5);
    expect((await v2(sb, customerPath('many', '/subscriptions?limit=0'))).body.type).toBe('parameter_error');
  });

  it('answers injected 500s with a v2 server_error body', async () => {
    const sb = await start({ apiKeys: [SECRET], fault5xxRate: 1, seed: 3 });
    const statuses = new Set<number>();
    for (let i = 0; i < 12; i++) {
      const reply = await v2(sb, customerPath('x'));
      statuses.add(reply.status);
      if (reply.status === 500) expect(reply.body).toMatchObject({ object: 'error', type: 'server_error', retryable: true });
    }
    expect([...statuses].every((s) => s >= 500)).toBe(true);
    expect(sb.stats().faults['5xx']).toBe(12);
  });
});

describe('admin state changes (for reconciliation tests)', () => {
  it('deletes a subscriber, removes or patches a purchase, transfers — as methods and over HTTP', async () => {
    const sb = await start();
    await post(sb, receipt({ app_user_id: 'a', fetch_token: 't1', product_id: 'p1' }));
    await post(sb, receipt({ app_user_id: 'a', fetch_token: 't2', product_id: 'p2' }));
    await post(sb, receipt({ app_user_id: 'b', fetch_token: 't3', product_id: 'p3' }));
    await post(sb, receipt({ app_user_id: 'c', fetch_token: 't4.sbx-lifetime', product_id: 'life' }));
    const requests = sb.stats().requests;

    expect(sb.updatePurchase('a', 'p1', { expiresDateMs: NOW - DAY })).toBe('ok');
    expect(sb.peekSubscriber('a')?.subscriptions.p1?.expires_date).toBe(iso(NOW - DAY));
    expect(sb.updatePurchase('a', 'p2', { environment: 'sandbox' })).toBe('ok');
    expect(sb.peekSubscriber('a')?.subscriptions.p2?.is_sandbox).toBe(true);
    expect(sb.updatePurchase('a', 'nope', { environment: 'sandbox' })).toBe('no_such_product');
    expect(sb.updatePurchase('nobody', 'p1', { environment: 'sandbox' })).toBe('no_such_subscriber');
    expect(sb.updatePurchase('c', 'life', { expiresDateMs: NOW })).toBe('not_a_subscription');
    expect(sb.removePurchase('a', 'p1')).toBe(true);
    expect(sb.removePurchase('a', 'p1')).toBe(false);
    expect(Object.keys(sb.peekSubscriber('a')?.subscriptions ?? {})).toEqual(['p2']);
    expect(sb.transferSubscriber('b', 'someone_else')).toBe(true);
    expect(sb.peekSubscriber('b')?.original_app_user_id).toBe('someone_else');
    expect(sb.peekSubscriber('someone_else')?.original_app_user_id).toBe('someone_else');
    expect(sb.deleteSubscriber('b')).toBe(true);
    expect(sb.peekSubscriber('b')).toBeUndefined();
    expect(sb.peekSubscriber('someone_else')).toBeUndefined();
    expect(sb.deleteSubscriber('b')).toBe(false);

    const call = (method: string, path: string, body?: unknown) =>
      fetch(`${sb.url}/_sandbox/subscribers/${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    expect((await call('PATCH', 'a/products/p2', { expires_at_ms: NOW + 5 * DAY, environment: 'production' })).status).toBe(200);
    expect(sb.peekSubscriber('a')?.subscriptions.p2).toMatchObject({ expires_date: iso(NOW + 5 * DAY), is_sandbox: false });
    expect((await call('PATCH', 'a/products/p2', { environment: 'staging' })).status).toBe(400);
    expect((await call('PATCH', 'a/products/p2', {})).status).toBe(400);
    expect((await call('PATCH', 'c/products/life', { environment: 'sandbox' })).status).toBe(200);
    expect(sb.peekSubscriber('c')?.non_subscriptions.life?.[0]?.is_sandbox).toBe(true);
    expect((await call('POST', 'c/transfer', { original_app_user_id: 'c_orig' })).status).toBe(200);
    expect(sb.peekSubscriber('c')?.original_app_user_id).toBe('c_orig');
    expect((await call('POST', 'c/transfer', {})).status).toBe(400);
    expect((await call('DELETE', 'a/products/p2')).status).toBe(200);
    expect((await call('DELETE', 'a/products/p2')).status).toBe(404);
    expect((await call('DELETE', 'a')).status).toBe(200);
    expect((await call('DELETE', 'a')).status).toBe(404);
    expect(sb.stats().subscribers).toBe(1);
    // Admin calls are not API traffic.
    expect(sb.stats().requests).toBe(requests);
  });
});
