// The ledger's compact outcome form must give back exactly what was stored.
import { describe, expect, it } from 'vitest';
import { decodeOutcome, encodeOutcome } from '../src/ledger/outcomeCodec.js';
import type { Outcome } from '../src/types.js';

const succeeded: Outcome = {
  status: 'succeeded',
  src: 's3://bucket/exports/2026-11-20/receipts.csv.gz',
  line: 1686,
  fp: 'dda2b3dfbf70c452c7076d',
  platform: 'ios',
  app_user_id: 'user-1684',
  product_id: 'com.example.premium.monthly',
  token: 'MIIT…1684',
  http_status: 200,
  attempts: 1,
  queued_at: '2026-11-21T06:12:21.207Z',
  finished_at: '2026-11-21T06:12:23.751Z',
  subscriber: {
    original_app_user_id: 'user-1684',
    active_entitlements: [
      { id: 'premium', expires_date: '2026-12-21T06:12:23Z', product_identifier: 'com.example.premium.monthly' },
      { id: 'lifetime', expires_date: null, product_identifier: 'com.example.lifetime' },
    ],
    product_found: 'subscription',
    product: { expires_date: '2026-12-21T06:12:23Z', is_sandbox: false },
  },
  expect: { entitlement: 'premium', expiresAt: '2026-12-21T00:00:00.000Z', active: true },
  mismatches: [{ kind: 'expiry_differs', expected: '2026-12-21T00:00:00.000Z', actual: '2026-12-21T06:12:23Z' }],
};

const failed: Outcome = {
  status: 'failed',
  src: 'a.csv',
  line: 3,
  fp: 'abc',
  platform: 'android',
  app_user_id: 'u',
  token: '****',
  http_status: 400,
  code: 7103,
  reason: 'rc_7103',
  message: 'The receipt is not valid.',
  attempts: 2,
  queued_at: '2026-11-21T06:12:21.000Z',
  finished_at: '2026-11-21T06:12:22.000Z',
  input: { app_user_id: 'u', token: 'the-whole-token', $email: 'u@example.com' },
  body: { app_user_id: 'u', fetch_token: 'the-whole-token', product_id: 'gold', attributes: { $email: { value: 'u@example.com', updated_at_ms: 1 } } },
};

describe('outcome codec', () => {
  it.each([
    ['succeeded', succeeded, ['x', 'y', succeeded.src]],
    ['failed', failed, [failed.src]],
  ])('round-trips a %s outcome', (_n, outcome, sources) => {
    const encoded = encodeOutcome(outcome, sources.indexOf(outcome.src));
    expect(decodeOutcome(outcome.fp, encoded, sources)).toEqual(outcome);
  });

  it('round-trips a transferred purchase and a network failure without an HTTP status', () => {
    const transferred: Outcome = { ...succeeded, status: 'failed', reason: 'transferred', subscriber: { ...succeeded.subscriber!, original_app_user_id: 'orig_user-1684' } };
    expect(decodeOutcome(transferred.fp, encodeOutcome(transferred, 2), ['x', 'y', succeeded.src])).toEqual(transferred);
    const { http_status: _h, code: _c, ...timeout } = { ...failed, reason: 'timeout', message: 'gave up after 6 attempts: timeout' };
    expect(decodeOutcome(timeout.fp, encodeOutcome(timeout, 0), ['a.csv'])).toEqual(timeout);
  });

  it('stores a succeeded row in far fewer bytes than its JSON object', () => {
    const encoded = encodeOutcome(succeeded, 2);
    expect(encoded.length).toBeLessThan(JSON.stringify(succeeded).length / 2);
    expect(encoded).not.toContain(succeeded.src);
  });
});
