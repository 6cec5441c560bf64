import { describe, expect, it } from 'vitest';
import { ERROR_CODES, classify, describeCode, sanitizeMessage, type Classification, type RetryClass } from '../src/revenuecat/classify.js';
import type { ApiResult, ResponseMeta } from '../src/revenuecat/client.js';
import { isSubscriber, type Subscriber } from '../src/revenuecat/subscriber.js';
import { summarizeSubscriber } from '../src/state/subscriberSummary.js';

const subscriber: Subscriber = {
  original_app_user_id: 'user-1',
  original_application_version: null,
  original_purchase_date: null,
  management_url: null,
  first_seen: '2024-01-01T00:00:00Z',
  last_seen: '2024-01-01T00:00:00Z',
  entitlements: {},
  subscriptions: {},
  non_subscriptions: {},
};

function res(status: number, body: unknown, headers: ResponseMeta = {}): ApiResult {
  return { kind: 'response', status, body, headers, durationMs: 5 };
}

function net(error: 'timeout' | 'reset' | 'refused' | 'other', message = ''): ApiResult {
  return { kind: 'network', error, message, durationMs: 5 };
}

describe('success and malformed 2xx', () => {
  it.each([200, 201])('%i with a subscriber object is success', (status) => {
    const c = classify(res(status, { request_date_ms: 1, subscriber }));
    expect(c).toEqual({ kind: 'success', status, subscriber });
  });

  it.each([
    ['no body fields', {}],
    ['raw html', { raw: '<html>' }],
    ['subscriber without id', { subscriber: { entitlements: {}, subscriptions: {}, non_subscriptions: {} } }],
    ['subscriber with wrong entitlements', { subscriber: { ...subscriber, entitlements: { pro: { expires_date: 5 } } } }],
    ['null body', null],
  ])('2xx with %s is permanent malformed_response', (_label, body) => {
    const c = classify(res(200, body));
    expect(c).toMatchObject({ kind: 'permanent', status: 200, reason: 'malformed_response' });
  });
});

describe('HTTP statuses without a code', () => {
  const cases: [number, RetryClass][] = [
    [400, 'permanent'],
    [401, 'fatal'],
    [403, 'fatal'],
    [404, 'permanent'],
    [408, 'transient'],
    [409, 'permanent'],
    [410, 'permanent'],
    [422, 'permanent'],
    [423, 'transient'],
    [425, 'transient'],
    [429, 'transient'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
    [504, 'transient'],
    [529, 'transient'],
  ];
  it.each(cases)('%i → %s, reason http_<status>', (status, kind) => {
    const c = classify(res(status, { message: 'something' }));
    expect(c.kind).toBe(kind);
    expect(c).toMatchObject({ status, reason: `http_${status}` });
    expect(c).not.toHaveProperty('code');
  });

  it('429 is rateLimited, not userBusy; 423 is userBusy, not rateLimited; 503 neither', () => {
    expect(classify(res(429, {}))).toMatchObject({ kind: 'transient', rateLimited: true, userBusy: false });
    expect(classify(res(423, { object: 'error', type: 'resource_locked_error' }))).toMatchObject({ kind: 'transient', rateLimited: false, userBusy: true });
    expect(classify(res(503, {}))).toMatchObject({ kind: 'transient', rateLimited: false, userBusy: false });
  });

  it('an HTML 502 page gets a short description, not the page', () => {
    const c = classify(res(502, { raw: '<html><body>Bad gateway</body></html>' }));
    expect(c).toMatchObject({ kind: 'transient', reason: 'http_502', message: 'HTTP 502' });
  });

  it('401 without a code says which setting to fix', () => {
    const c = classify(res(401, { raw: '' }));
    expect(c.kind).toBe('fatal');
    expect(c.kind === 'fatal' && c.message).toMatch(/REVENUECAT_API_KEY/);
    const f = classify(res(403, {}));
    expect(f).toMatchObject({ kind: 'fatal', reason: 'http_403' });
    expect(f.kind === 'fatal' && f.message).toMatch(/\(403\).*REVENUECAT_API_KEY/);
  });
});

describe('every backend code of the import error table', () => {
  const table: [number, RetryClass][] = [
    [7000, 'permanent'],
    [7101, 'transient'],
    [7102, 'permanent'],
    [7103, 'permanent'],
    [7104, 'fatal'],
    [7105, 'permanent'],
    [7106, 'permanent'],
    [7107, 'fatal'],
    [7110, 'transient'],
    [7220, 'permanent'],
    [7224, 'fatal'],
    [7225, 'fatal'],
    [7226, 'permanent'],
    [7229, 'transient'],
    [7231, 'transient'],
    [7255, 'permanent'],
    [7256, 'permanent'],
    [7629, 'transient'],
    [7636, 'permanent'],
    [7638, 'transient'],
    [7712, 'permanent'],
    [7852, 'permanent'],
  ];

  it('the exported table holds exactly these codes with these classes', () => {
    expect(Object.keys(ERROR_CODES).map(Number).sort()).toEqual(table.map(([c]) => c).sort());
    for (const [code, retry] of table) {
      expect(describeCode(code)?.retry).toBe(retry);
      expect(describeCode(code)?.meaning.length).toBeGreaterThan(3);
    }
    expect(describeCode(1234)).toBeUndefined();
  });

  it.each(table)('code %i on a 400 → %s with reason rc_<code>', (code, kind) => {
    const c = classify(res(400, { code, message: `RevenueCat says ${code}` }));
    expect(c.kind).toBe(kind);
    expect(c).toMatchObject({ status: 400, code, reason: `rc_${code}` });
    if (kind !== 'fatal' && c.kind !== 'success') expect(c.message).toBe(`RevenueCat says ${code}`);
  });

  it.each([7104, 7107, 7224, 7225])('fatal code %i message names what to fix and keeps RevenueCat’s words', (code) => {
    const c = classify(res(401, { code, message: 'nope' }));
    expect(c.kind).toBe('fatal');
    if (c.kind !== 'fatal') return;
    expect(c.message).toContain(`(401, code ${code})`);
    expect(c.message).toMatch(/: set |: upload /);
    expect(c.message).toContain('RevenueCat said: nope');
  });

  it('the example message for 7225', () => {
    const c = classify(res(401, { code: 7225, message: 'Invalid API Key.' }));
    expect(c.kind === 'fatal' && c.message).toMatch(/^RevenueCat rejected the API key \(401, code 7225\): set REVENUECAT_API_KEY to the app's public SDK key/);
  });

  it('7638 is userBusy (and not rateLimited even on a 429); 7229 on a 429 is rateLimited', () => {
    expect(classify(res(429, { code: 7638, message: 'in progress' }))).toMatchObject({
      kind: 'transient',
      reason: 'rc_7638',
      rateLimited: false,
      userBusy: true,
    });
    expect(classify(res(409, { code: 7638 }))).toMatchObject({ kind: 'transient', rateLimited: false, userBusy: true });
    expect(classify(res(429, { code: 7229 }))).toMatchObject({ kind: 'transient', rateLimited: true, userBusy: false });
  });

  it('a known code without a message uses the code meaning', () => {
    expect(classify(res(400, { code: 7103 }))).toMatchObject({ kind: 'permanent', message: 'invalid receipt / token' });
  });

  it('a code sent as a numeric string still counts', () => {
    expect(classify(res(400, { code: '7101' }))).toMatchObject({ kind: 'transient', code: 7101, reason: 'rc_7101' });
  });

  it('attribute_errors are appended to the message', () => {
    const c = classify(res(400, { code: 7226, message: 'bad attrs', attribute_errors: [{ key_name: '$email', message: 'invalid email' }] }));
    expect(c).toMatchObject({ kind: 'permanent', message: 'bad attrs ($email: invalid email)' });
  });
});

describe('precedence: a known code wins over the status', () => {
  it.each<[number, number, Classification['kind']]>([
    [400, 7101, 'transient'],
    [422, 7629, 'transient'],
    [500, 7104, 'fatal'],
    [503, 7225, 'fatal'],
    [500, 7103, 'permanent'],
    [502, 7852, 'permanent'],
    [429, 7102, 'permanent'],
    [401, 7103, 'permanent'],
  ])('status %i with code %i → %s', (status, code, kind) => {
    const c = classify(res(status, { code, message: 'm' }));
    expect(c.kind).toBe(kind);
    expect(c).toMatchObject({ status, code, reason: `rc_${code}` });
  });

  it.each<[number, Classification['kind']]>([
    [500, 'transient'],
    [400, 'permanent'],
    [401, 'fatal'],
    [429, 'transient'],
  ])('an unknown code on %i falls back to the status → %s', (status, kind) => {
    const c = classify(res(status, { code: 9999, message: 'm' }));
    expect(c.kind).toBe(kind);
    expect(c).toMatchObject({ code: 9999, reason: 'rc_9999' });
  });
});

describe('Retry-After handling', () => {
  it('carries retryAfterMs from the response meta', () => {
    expect(classify(res(429, {}, { retryAfterMs: 3000 }))).toMatchObject({ kind: 'transient', retryAfterMs: 3000 });
  });

  it('prefers body backoff_ms', () => {
    const c = classify(res(429, { object: 'error', type: 'rate_limit_error', message: 'x', backoff_ms: 1200 }, { retryAfterMs: 60_000 }));
    expect(c).toMatchObject({ kind: 'transient', retryAfterMs: 1200 });
  });

  it('leaves it out when unknown', () => {
    expect(classify(res(503, {}))).not.toHaveProperty('retryAfterMs');
  });
});

describe('answers RevenueCat has sent before', () => {
  it('Is-Retryable: false fails the row at once, with its reason', () => {
    const c = classify(res(500, { code: 7110, message: 'Internal server error.' }, { isRetryable: false }));
    expect(c).toMatchObject({ kind: 'permanent', status: 500, code: 7110, reason: 'rc_7110' });
    expect(c.kind === 'permanent' && c.message).toMatch(/Is-Retryable: false/);
    // Also a 429 or a 529 the server says not to try again; a success, or a fatal answer, stays what it is.
    expect(classify(res(529, {}, { isRetryable: false }))).toMatchObject({ kind: 'permanent', reason: 'http_529' });
    expect(classify(res(200, { subscriber }, { isRetryable: false })).kind).toBe('success');
    expect(classify(res(401, {}, { isRetryable: false })).kind).toBe('fatal');
    // Is-Retryable: true changes nothing.
    expect(classify(res(500, { code: 7110 }, { isRetryable: true }))).toMatchObject({ kind: 'transient' });
  });

  it('a 529 is the token in process: retried after a few seconds, never the rate limit, never a busy user', () => {
    const c = classify(res(529, { message: 'The token is being processed.' }, { retryAfterMs: 1000 }));
    expect(c).toMatchObject({ kind: 'transient', status: 529, inProcess: true, rateLimited: false, userBusy: false, retryAfterMs: 3000 });
    expect(classify(res(529, {}, { retryAfterMs: 8000 }))).toMatchObject({ inProcess: true, retryAfterMs: 8000 });
    // The same-user overlap some deployments send as 529 (code 7638) is a busy user, as before.
    expect(classify(res(529, { code: 7638 }))).toMatchObject({ kind: 'transient', userBusy: true, rateLimited: false });
    expect(classify(res(529, { code: 7638 }))).not.toHaveProperty('inProcess');
  });

  it('a wait the client capped is taken as capped, even with a longer backoff_ms in the body', () => {
    const capped = res(429, { backoff_ms: 9_000_000 }, { retryAfterMs: 600_000, retryAfterNote: 'backoff_ms 9000000 asks for a wait longer than maxRetryAfterMs' });
    expect(classify(capped)).toMatchObject({ kind: 'transient', rateLimited: true, retryAfterMs: 600_000 });
  });
});

describe('network errors', () => {
  it.each(['timeout', 'reset', 'refused', 'other'] as const)('%s → transient with the error name as reason', (error) => {
    const c = classify(net(error, `${error} happened`));
    expect(c).toEqual({ kind: 'transient', reason: error, message: `${error} happened`, rateLimited: false, userBusy: false });
  });

  it('an empty message gets a short description', () => {
    expect(classify(net('refused'))).toMatchObject({ message: 'connection refused' });
  });
});

describe('messages never carry keys or tokens', () => {
  const receiptB64 = 'MIIT0gYJKoZIhvcNAQcCoIITwzCCE78CAQExCzAJBgUrDgMCGgUAMIIDcwYJKoZIhvcNAQcBoIIDZASCA2Ax';
  const jws = 'eyJhbGciOiJFUzI1NiJ9.eyJ0cmFuc2FjdGlvbklkIjoiMSJ9.c2lnbmF0dXJl';

  it.each([
    ['public key', 'bad key appl_AbCdEf123456 given', 'appl_AbCdEf123456'],
    ['secret key', 'key sk_live_AbCdEf123456xyz wrong', 'sk_live_AbCdEf123456xyz'],
    ['bearer', 'Authorization: Bearer goog_XyZ987654321', 'goog_XyZ987654321'],
    ['receipt', `invalid receipt ${receiptB64}`, receiptB64],
    ['jws', `bad transaction ${jws}`, jws],
  ])('%s is redacted', (_label, text, secret) => {
    const c = classify(res(400, { code: 7103, message: text }));
    expect(c.kind).toBe('permanent');
    if (c.kind === 'success') return;
    expect(c.message).not.toContain(secret);
    expect(c.message).toContain('[redacted]');

    const f = classify(res(401, { code: 7225, message: text }));
    expect(f.kind === 'fatal' && f.message).not.toContain(secret);
  });

  it('keeps ordinary long product ids and bounds the length', () => {
    expect(sanitizeMessage('product com.example.myapp.premium.monthly.subscription missing')).toBe('product com.example.myapp.premium.monthly.subscription missing');
    expect(sanitizeMessage('x '.repeat(1000)).length).toBeLessThanOrEqual(300);
  });
});

describe('subscriber helpers', () => {
  const now = Date.parse('2025-06-01T00:00:00Z');
  const full: Subscriber = {
    ...subscriber,
    original_app_user_id: '$RCAnonymousID:abc',
    entitlements: {
      pro: { expires_date: '2025-07-01T00:00:00Z', product_identifier: 'premium_monthly', purchase_date: '2025-06-01T00:00:00Z' },
      lifetime: { expires_date: null, product_identifier: 'lifetime_unlock' },
      old: { expires_date: '2025-05-01T00:00:00Z', product_identifier: 'premium_old' },
    },
    subscriptions: {
      premium_monthly: { expires_date: '2025-07-01T00:00:00Z', store: 'app_store', is_sandbox: false },
      'gold:monthly-base': { expires_date: '2025-07-01T00:00:00Z', store: 'play_store' },
    },
    non_subscriptions: { lifetime_unlock: [{ id: 'tx1', purchase_date: '2024-01-01T00:00:00Z', store: 'app_store' }], empty_one: [] },
  };

  it('isSubscriber accepts the seed shape and rejects broken ones', () => {
    expect(isSubscriber(full)).toBe(true);
    expect(isSubscriber(subscriber)).toBe(true);
    expect(isSubscriber(null)).toBe(false);
    expect(isSubscriber({ ...full, original_app_user_id: 5 })).toBe(false);
    expect(isSubscriber({ ...full, subscriptions: [] })).toBe(false);
    expect(isSubscriber({ ...full, non_subscriptions: { x: {} } })).toBe(false);
    expect(isSubscriber({ ...full, entitlements: { pro: { expires_date: null } } })).toBe(false);
    const { entitlements: _e, ...noEntitlements } = full;
    expect(isSubscriber(noEntitlements)).toBe(false);
  });

  it('lists active entitlements (future or null expiry), sorted by id', () => {
    const s = summarizeSubscriber(full, undefined, now);
    expect(s).toEqual({
      original_app_user_id: '$RCAnonymousID:abc',
      active_entitlements: [
        { id: 'lifetime', expires_date: null, product_identifier: 'lifetime_unlock' },
        { id: 'pro', expires_date: '2025-07-01T00:00:00Z', product_identifier: 'premium_monthly' },
      ],
      product_found: 'not_checked',
    });
  });

  it('is relative to `now`', () => {
    const later = Date.parse('2025-08-01T00:00:00Z');
    expect(summarizeSubscriber(full, undefined, later).active_entitlements.map((e) => e.id)).toEqual(['lifetime']);
  });

  it.each([
    ['premium_monthly', 'subscription'],
    ['gold', 'subscription'],
    ['gold:monthly-base', 'subscription'],
    ['gold:yearly-base', 'absent'],
    ['lifetime_unlock', 'non_subscription'],
    ['empty_one', 'absent'],
    ['premium', 'absent'],
  ])('product %s → %s', (productId, found) => {
    expect(summarizeSubscriber(full, productId, now).product_found).toBe(found);
  });
});
