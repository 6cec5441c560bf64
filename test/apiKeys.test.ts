// Keys per app, without Redis: which variable gives which platform its key, how a key is named without being
// shown, configuration errors that name the variable and never the value, the ingest-time rejection of a row
// whose platform has no key, fatal messages that name the key, and Google tokens past their cut-off.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { planColumns, type ColumnPlan } from '../src/ingest/columns.js';
import { GOOGLE_CUTOFF_MS } from '../src/ingest/tokenExpiry.js';
import { validateRow } from '../src/ingest/validateRow.js';
import { OutcomeTally } from '../src/reports/summary.js';
import { classify } from '../src/revenuecat/classify.js';
import type { ApiResult } from '../src/revenuecat/client.js';
import { PLATFORMS } from '../src/revenuecat/fields.js';
import { keyFingerprint, keyLabel, keyPlanOf, keyRingOf, missingKeyReason } from '../src/revenuecat/keyRing.js';
import { googleTokenExpired } from '../src/workers/googleCutoff.js';
import type { Outcome } from '../src/types.js';

const IOS = 'appl_IosSecretKey0123456789';
const ANDROID = 'goog_AndroidSecretKey0123456789';
const FALLBACK = 'sk_ProjectSecretKey0123456789';

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    keyRingOf(loadConfig({ env }));
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('no ConfigError');
}

describe('a key per platform', () => {
  it('gives each platform its own key and the others REVENUECAT_API_KEY', () => {
    const ring = keyRingOf(loadConfig({ env: { REVENUECAT_API_KEY_IOS: IOS, REVENUECAT_API_KEY_ANDROID: ANDROID, REVENUECAT_API_KEY: FALLBACK } }));
    expect(ring.secretFor('ios')).toBe(IOS);
    expect(ring.secretFor('android')).toBe(ANDROID);
    for (const p of PLATFORMS.filter((p) => p !== 'ios' && p !== 'android')) expect(ring.secretFor(p)).toBe(FALLBACK);
    expect(ring.forPlatform('android')).toEqual({ variable: 'REVENUECAT_API_KEY_ANDROID', label: 'goog_An…', fingerprint: keyFingerprint(ANDROID), platforms: ['android'] });
    const fallback = ring.forPlatform('amazon');
    expect(fallback?.variable).toBe('REVENUECAT_API_KEY');
    expect(fallback?.platforms).toEqual(['amazon', 'macos', 'uikitformac', 'stripe', 'roku', 'paddle']);
    expect(ring.keys()).toHaveLength(3);
    // What the ring shows of itself (a log, JSON) never holds a key.
    const shown = JSON.stringify(ring);
    for (const key of [IOS, ANDROID, FALLBACK]) expect(shown).not.toContain(key);
  });

  it('leaves platforms without a key out when there is no REVENUECAT_API_KEY', () => {
    const ring = keyRingOf(loadConfig({ env: { REVENUECAT_API_KEY_IOS: IOS } }));
    expect(ring.platforms()).toEqual(['ios']);
    expect(ring.has('android')).toBe(false);
    expect(ring.missing('android')).toBe('no API key for android: set REVENUECAT_API_KEY_ANDROID or REVENUECAT_API_KEY');
    expect(missingKeyReason('uikitformac')).toBe('no API key for uikitformac: set REVENUECAT_API_KEY_UIKITFORMAC or REVENUECAT_API_KEY');
  });

  it('names a key by its first characters and a fingerprint, never more', () => {
    expect(keyLabel('goog_abcdefghijklmnopqrstuvwxyz')).toBe('goog_ab…');
    expect(keyLabel('sk_XyZabcdefghijklmnop')).toBe('sk_Xy…');
    expect(keyLabel('plainkeywithoutprefix')).toBe('plai…');
    // a short key shows at most a third of itself
    expect(keyLabel('appl_x')).toBe('ap…');
    expect(keyFingerprint(ANDROID)).toMatch(/^[0-9a-f]{8}$/);
    expect(keyFingerprint(ANDROID)).not.toBe(keyFingerprint(IOS));
  });

  it('reads a platform key from its _FILE variable, which wins over the variable itself', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rcm-keys-'));
    try {
      const file = join(dir, 'android.key');
      await writeFile(file, `${ANDROID}\n`);
      const ring = keyRingOf(loadConfig({ env: { REVENUECAT_API_KEY_ANDROID_FILE: file, REVENUECAT_API_KEY_ANDROID: 'goog_other0123456789' } }));
      expect(ring.secretFor('android')).toBe(ANDROID);
      expect(ring.forPlatform('android')?.variable).toBe('REVENUECAT_API_KEY_ANDROID');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('key configuration errors name the variable, never the value', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rcm-keys-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('an unreadable key file', () => {
    expect(() => loadConfig({ env: { REVENUECAT_API_KEY_IOS_FILE: '/nonexistent/ios.key' } })).toThrow(
      /REVENUECAT_API_KEY_IOS_FILE=\/nonexistent\/ios\.key: cannot read the key file \(ENOENT\)/,
    );
  });

  it('an empty key file', async () => {
    const file = join(dir, 'empty.key');
    await writeFile(file, '\n  \n');
    expect(() => loadConfig({ env: { REVENUECAT_API_KEY_ANDROID_FILE: file } })).toThrow(/REVENUECAT_API_KEY_ANDROID_FILE=.*: the key file is empty/);
  });

  it('a blank key, and a key with whitespace inside', () => {
    const blank = configError({ REVENUECAT_API_KEY_STRIPE: '   ' });
    expect(blank.message).toMatch(/^REVENUECAT_API_KEY_STRIPE is empty/);
    const spaced = configError({ REVENUECAT_API_KEY_ROKU: 'roku_abc def0123' });
    expect(spaced.message).toMatch(/^REVENUECAT_API_KEY_ROKU contains whitespace/);
    expect(spaced.message).not.toContain('roku_abc');
    const fallback = configError({ REVENUECAT_API_KEY: 'sk_abc\tdef0123', REVENUECAT_API_KEY_IOS: IOS });
    expect(fallback.message).toMatch(/^REVENUECAT_API_KEY contains whitespace/);
  });

  it('no key at all says how to give one (an empty variable is unset)', () => {
    const none = configError({ REVENUECAT_API_KEY: '', REVENUECAT_API_KEY_IOS: '' });
    expect(none.message).toMatch(/^REVENUECAT_API_KEY is not set/);
    expect(none.message).toContain('REVENUECAT_API_KEY_ANDROID');
    // An ingest without keys checks nothing: the plan is absent.
    expect(keyPlanOf(loadConfig({ env: {} }))).toBeUndefined();
  });
});

describe('the limit scope setting', () => {
  it("defaults to one limit for the run, and takes 'key' from RC_MIGRATE_RATE_LIMIT_SCOPE", () => {
    expect(loadConfig({ env: {} }).rateLimitScope).toBe('run');
    expect(loadConfig({ env: { RC_MIGRATE_RATE_LIMIT_SCOPE: 'key' } }).rateLimitScope).toBe('key');
    expect(() => loadConfig({ env: { RC_MIGRATE_RATE_LIMIT_SCOPE: 'app' } })).toThrow(/rateLimitScope \(from environment variable RC_MIGRATE_RATE_LIMIT_SCOPE\)/);
  });
});

describe('ingest rejects a row whose platform has no key', () => {
  const plan = (planColumns(['platform', 'app_user_id', 'fetch_token', 'product_id'], {}) as { plan: ColumnPlan }).plan;
  const keys = keyPlanOf(loadConfig({ env: { REVENUECAT_API_KEY_IOS: IOS } }));

  it('names the variable to set; rows of platforms with a key pass', () => {
    const android = validateRow({ platform: 'android', app_user_id: 'u1', fetch_token: 'tok-1', product_id: 'p' }, plan, { ...(keys ? { keys } : {}) });
    expect(android).toEqual({ ok: false, reason: 'no API key for android: set REVENUECAT_API_KEY_ANDROID or REVENUECAT_API_KEY' });
    const ios = validateRow({ platform: 'ios', app_user_id: 'u1', fetch_token: 'tok-1', product_id: '' }, plan, { ...(keys ? { keys } : {}) });
    expect(ios.ok).toBe(true);
    // Without a plan (an ingest that holds no key) nothing is checked.
    expect(validateRow({ platform: 'android', app_user_id: 'u1', fetch_token: 'tok-1', product_id: 'p' }, plan, {}).ok).toBe(true);
  });

  it('a row with a data problem keeps that reason (the key is checked last)', () => {
    const bad = validateRow({ platform: 'android', app_user_id: 'u1', fetch_token: 'tok-1', product_id: '' }, plan, { ...(keys ? { keys } : {}) });
    expect(bad.ok === false && bad.reason).toMatch(/product_id/);
  });
});

function answer(status: number, body: unknown): ApiResult {
  return { kind: 'response', status, body, headers: {}, durationMs: 5 };
}

describe('fatal answers name the key and what they stop', () => {
  const key = { variable: 'REVENUECAT_API_KEY_ANDROID', label: 'goog_An…', rows: 'android' };

  it('a refused key', () => {
    const c = classify(answer(401, { code: 7225, message: 'Invalid API Key.' }), key);
    expect(c).toMatchObject({ kind: 'fatal', cause: 'key', status: 401, code: 7225 });
    expect(c.kind === 'fatal' && c.message).toMatch(
      /^RevenueCat rejected the API key for android rows \(goog_An…, REVENUECAT_API_KEY_ANDROID\) \(401, code 7225\): set REVENUECAT_API_KEY_ANDROID to the app's public SDK key/,
    );
    expect(classify(answer(401, {}), key)).toMatchObject({ kind: 'fatal', cause: 'key' });
    expect(classify(answer(400, { code: 7224 }), key)).toMatchObject({ kind: 'fatal', cause: 'key' });
  });

  it('store credentials and access', () => {
    const play = classify(answer(400, { code: 7107, message: 'bad credentials' }), key);
    expect(play).toMatchObject({ kind: 'fatal', cause: 'store_credentials' });
    expect(play.kind === 'fatal' && play.message).toMatch(/^RevenueCat rejected the Play Store credentials for android rows \(goog_An…, REVENUECAT_API_KEY_ANDROID\)/);
    expect(classify(answer(400, { code: 7104 }), key)).toMatchObject({ kind: 'fatal', cause: 'store_credentials' });
    const denied = classify(answer(403, {}), key);
    expect(denied).toMatchObject({ kind: 'fatal', cause: 'access' });
    expect(denied.kind === 'fatal' && denied.message).toMatch(/check that REVENUECAT_API_KEY_ANDROID belongs/);
  });
});

describe('Google tokens past their cut-off', () => {
  const SENT = Date.UTC(2026, 5, 1);
  const expiredAt = Date.UTC(2026, 0, 15); // 137 days before SENT
  const permanent = (status: number, code?: number) => {
    const c = classify(answer(status, code === undefined ? {} : { code, message: 'The receipt is not valid.' }));
    if (c.kind !== 'permanent') throw new Error(`not permanent: ${c.kind}`);
    return c;
  };
  const flagged = { platform: 'android' as const, token_expiry: { expires_at_ms: expiredAt, past_cutoff: true } };

  it('a flagged row refused with 7103 or 410 gets google_token_expired, with the date and why a retry will not help', () => {
    for (const verdict of [permanent(400, 7103), permanent(410)]) {
      expect(googleTokenExpired(flagged, verdict, SENT)).toEqual({
        reason: 'google_token_expired',
        message:
          'Google Play no longer validates this purchase token: it expired on 2026-01-15, more than ~60 days before it was sent (the store answers 410 purchaseTokenNoLongerValid), so RevenueCat cannot import it; retrying will not help.',
      });
    }
  });

  it('so does a row that went past its cut-off while it waited, and no other', () => {
    const fresh = { platform: 'android' as const, token_expiry: { expires_at_ms: SENT - GOOGLE_CUTOFF_MS - 1000, past_cutoff: false } };
    expect(googleTokenExpired(fresh, permanent(400, 7103), SENT)?.reason).toBe('google_token_expired');
    const inside = { platform: 'android' as const, token_expiry: { expires_at_ms: SENT - GOOGLE_CUTOFF_MS + 60_000, past_cutoff: false } };
    expect(googleTokenExpired(inside, permanent(400, 7103), SENT)).toBeUndefined();
    expect(googleTokenExpired({ platform: 'android' }, permanent(400, 7103), SENT)).toBeUndefined();
    expect(googleTokenExpired({ ...flagged, platform: 'ios' }, permanent(400, 7103), SENT)).toBeUndefined();
    expect(googleTokenExpired(flagged, permanent(400, 7102), SENT)).toBeUndefined();
  });

  it('the summary counts finished rows flagged past the cut-off', () => {
    const tally = new OutcomeTally();
    const base = { src: 'a.csv', line: 2, fp: 'x', platform: 'android', app_user_id: 'u', attempts: 1, finished_at: new Date(SENT).toISOString() } as const;
    tally.add({ ...base, status: 'failed', reason: 'google_token_expired', past_google_cutoff: true } satisfies Outcome);
    tally.add({ ...base, status: 'succeeded', past_google_cutoff: true } satisfies Outcome);
    tally.add({ ...base, status: 'succeeded' } satisfies Outcome);
    expect(tally.pastGoogleCutoff).toBe(2);
    expect(tally.byErrorCode).toEqual({ google_token_expired: 1 });
  });
});
