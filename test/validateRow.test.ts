import { describe, expect, it } from 'vitest';
import { planColumns, type ColumnPlan } from '../src/ingest/columns.js';
import { maskToken } from '../src/ingest/fingerprint.js';
import { GOOGLE_CUTOFF_MS, LOWEST_PRIORITY, parseExpiry, readTokenExpiry, rowPriority, type TokenExpiry } from '../src/ingest/tokenExpiry.js';
import { validateRow, type RowResult } from '../src/ingest/validateRow.js';
import type { Platform, ReceiptField } from '../src/revenuecat/fields.js';

// Seed 003 ("Create a Purchase", parameter reference), written out by hand from the seed, NOT read from
// src/revenuecat/fields.ts: the test checks the implementation against the spec.
// Columns: iOS/macOS, Google, Amazon, Stripe.   R = Required ✅, O = Optional 🆗, N = Not compatible ❌
type S = 'R' | 'O' | 'N';
const SEED_003: Record<string, [apple: S, google: S, amazon: S, stripe: S]> = {
  app_user_id: ['R', 'R', 'R', 'R'],
  fetch_token: ['R', 'R', 'R', 'R'],
  attributes: ['O', 'O', 'O', 'O'],
  product_id: ['O', 'R', 'O', 'N'],
  price: ['O', 'O', 'O', 'N'],
  currency: ['O', 'O', 'O', 'N'],
  is_restore: ['O', 'O', 'O', 'O'],
  payment_mode: ['O', 'N', 'N', 'N'],
  create_events: ['O', 'O', 'O', 'O'],
  should_update_last_seen_fields: ['O', 'O', 'O', 'O'],
  subscription_group_id: ['O', 'N', 'N', 'N'],
  store_user_id: ['N', 'N', 'R', 'N'],
  presented_offering_identifier: ['O', 'O', 'O', 'O'],
  observer_mode: ['O', 'O', 'N', 'O'],
  introductory_price: ['O', 'N', 'N', 'N'],
  normal_duration: ['O', 'N', 'N', 'N'],
  intro_duration: ['O', 'N', 'N', 'N'],
  trial_duration: ['O', 'N', 'N', 'N'],
  store_country: ['O', 'N', 'N', 'N'],
  ip_address: ['O', 'N', 'N', 'N'],
};

/** The seed's store columns and the X-Platform values that fall under each. */
const STORE_PLATFORMS: [store: number, platform: Platform][] = [
  [0, 'ios'],
  [0, 'macos'],
  [1, 'android'],
  [2, 'amazon'],
  [3, 'stripe'],
];

const TOKEN = 'goog-TOKEN-abcdefghijklmnopqrstuvwxyz-0123456789';

/** Every body field has a column named as the field; $email is an attribute; a platform column is present. */
const ALL_FIELDS: ReceiptField[] = [
  'app_user_id',
  'fetch_token',
  'product_id',
  'price',
  'currency',
  'is_restore',
  'payment_mode',
  'subscription_group_id',
  'store_user_id',
  'presented_offering_identifier',
  'observer_mode',
  'introductory_price',
  'normal_duration',
  'intro_duration',
  'trial_duration',
  'store_country',
  'ip_address',
];
const PLAN: ColumnPlan = {
  fields: { ...Object.fromEntries(ALL_FIELDS.map((f) => [f, f])), platform: 'platform' },
  attributes: { $email: '$email' },
  ignored: ['notes'],
};

/** The minimum a row of this platform needs (product_id for Google, store_user_id for Amazon). */
function baseRow(platform: Platform): Record<string, string> {
  const row: Record<string, string> = { app_user_id: 'user_1', fetch_token: TOKEN, platform };
  if (platform === 'android') row.product_id = 'com.app.monthly';
  if (platform === 'amazon') row.store_user_id = 'amzn1.account.XYZ';
  return row;
}

/** A valid cell for each field, the value expected in the body, and a partner field the rule needs. */
const SAMPLE: Record<string, { cell: string; body: unknown; partner?: [string, string] }> = {
  product_id: { cell: 'com.app.yearly', body: 'com.app.yearly' },
  price: { cell: '9.99', body: 9.99, partner: ['currency', 'USD'] },
  currency: { cell: 'eur', body: 'EUR', partner: ['price', '4.99'] },
  is_restore: { cell: 'true', body: true },
  payment_mode: { cell: '2', body: 2 },
  subscription_group_id: { cell: '21345678', body: '21345678' },
  store_user_id: { cell: 'amzn1.account.ABC', body: 'amzn1.account.ABC' },
  presented_offering_identifier: { cell: 'default', body: 'default' },
  observer_mode: { cell: 'FALSE', body: false },
  introductory_price: { cell: '0.99', body: 0.99 },
  normal_duration: { cell: 'P1M', body: 'P1M' },
  intro_duration: { cell: 'P1W', body: 'P1W' },
  trial_duration: { cell: 'p3d', body: 'P3D' },
  store_country: { cell: 'us', body: 'US' },
  ip_address: { cell: '203.0.113.7', body: '203.0.113.7' },
};

const NOW = 1_700_000_000_000;
function check(row: Record<string, string>, opts: { platform?: Platform } = {}, plan: ColumnPlan = PLAN): RowResult {
  const result = validateRow(row, plan, { ...opts, now: () => NOW });
  if (!result.ok) {
    // Never echo a fetch token in a reason, whatever went wrong.
    expect(result.reason).not.toContain(row.fetch_token?.trim() || '\u0000');
    expect(result.reason).not.toMatch(/\n/);
  }
  return result;
}
function accepted(result: RowResult): Extract<RowResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected the row to be accepted, got: ${result.reason}`);
  return result;
}
function refused(result: RowResult): string {
  if (result.ok) throw new Error(`expected the row to be refused, got ${JSON.stringify(result.body)}`);
  return result.reason;
}

describe('seed 003 matrix: every field × every store', () => {
  const cases = Object.entries(SEED_003).flatMap(([field, support]) => STORE_PLATFORMS.map(([store, platform]) => ({ field, platform, rule: support[store] as S })));

  it('covers every row of the seed for all five platforms', () => {
    expect(cases).toHaveLength(20 * 5);
  });

  it.each(cases)('$field on $platform is $rule', ({ field, platform, rule }) => {
    const base = baseRow(platform);

    if (field === 'create_events' || field === 'should_update_last_seen_fields') {
      // The pipeline always sends both as false; a CSV cannot set them (the column is not a field of the plan).
      const body = accepted(check({ ...base, [field]: 'true' }, {}, { ...PLAN, ignored: [field] })).body;
      expect(body).not.toHaveProperty(field);
      return;
    }

    if (field === 'attributes') {
      const body = accepted(check({ ...base, $email: 'a@example.com' })).body;
      expect(body.attributes).toEqual({ $email: { value: 'a@example.com', updated_at_ms: NOW } });
      return;
    }

    if (rule === 'R') {
      const body = accepted(check(base)).body;
      expect(body).toHaveProperty(field);
      const missing = { ...base, [field]: '' };
      expect(refused(check(missing))).toContain(field);
      return;
    }

    const sample = SAMPLE[field];
    if (sample === undefined) throw new Error(`no sample for ${field}`);
    if (rule === 'O') {
      // Absent: fine. Present (with its partner when the rule needs one): sent, typed.
      expect(accepted(check(base)).body).not.toHaveProperty(field);
      const row = { ...base, [field]: sample.cell, ...(sample.partner ? { [sample.partner[0]]: sample.partner[1] } : {}) };
      const result = accepted(check(row));
      expect(result.platform).toBe(platform);
      expect((result.body as unknown as Record<string, unknown>)[field]).toEqual(sample.body);
      return;
    }

    // Not compatible: present alone → refused, naming the field and the platform; an empty cell is fine.
    const reason = refused(check({ ...base, [field]: sample.cell }));
    expect(reason).toContain(field);
    expect(reason).toContain(`${platform} rows`);
    expect(accepted(check({ ...base, [field]: '   ' })).body).not.toHaveProperty(field);
  });

  it('says which store a one-store field belongs to', () => {
    expect(refused(check({ ...baseRow('android'), payment_mode: '1' }))).toBe('payment_mode is iOS/macOS only; remove it for android rows');
    expect(refused(check({ ...baseRow('ios'), store_user_id: 'x' }))).toBe('store_user_id is Amazon only; remove it for ios rows');
    expect(refused(check({ ...baseRow('stripe'), product_id: 'x' }))).toBe('product_id is not accepted for stripe rows; remove it');
  });

  it('accepts only the fields every store accepts for platforms outside the seed (roku, paddle)', () => {
    expect(accepted(check({ ...baseRow('roku'), is_restore: 'yes', presented_offering_identifier: 'o' })).body).toMatchObject({
      is_restore: true,
      presented_offering_identifier: 'o',
    });
    expect(refused(check({ ...baseRow('paddle'), product_id: 'p' }))).toMatch(/product_id is not accepted for paddle rows/);
  });

  it('names the column when it is not named as the field', () => {
    const plan: ColumnPlan = { fields: { uid: 'app_user_id', sku: 'product_id', token: 'fetch_token' }, attributes: {}, ignored: [] };
    expect(refused(check({ uid: 'u1', sku: '', token: TOKEN }, { platform: 'android' }, plan))).toBe('product_id (column "sku") is empty; it is required for android rows');
    expect(refused(check({ uid: 'u1', token: ' ' }, { platform: 'ios' }, plan))).toBe('fetch_token (column "token") is empty; every row needs its receipt or token');
  });

  it('reports a required field without a column', () => {
    const plan: ColumnPlan = { fields: { app_user_id: 'app_user_id', fetch_token: 'fetch_token' }, attributes: {}, ignored: [] };
    expect(refused(check({ app_user_id: 'u', fetch_token: TOKEN }, { platform: 'amazon' }, plan))).toBe('store_user_id is required for amazon rows; add a store_user_id column');
  });
});

describe('price and currency', () => {
  const ios = baseRow('ios');
  it('needs both or neither', () => {
    expect(refused(check({ ...ios, price: '9.99' }))).toBe('price is given without currency; give both (for example 9.99 and USD) or neither');
    expect(refused(check({ ...ios, currency: 'USD' }))).toBe('currency is given without price; give both (for example 9.99 and USD) or neither');
    expect(accepted(check({ ...ios, price: '0', currency: 'JPY' })).body).toMatchObject({ price: 0, currency: 'JPY' });
  });

  it.each(['XYZ', 'US', '$', '€', 'dollars'])('refuses currency %j', (currency) => {
    expect(refused(check({ ...ios, price: '1', currency }))).toMatch(/^currency ".*" is not an ISO 4217 code/);
  });

  it('upper-cases a lower-case ISO code', () => {
    expect(accepted(check({ ...ios, price: '1', currency: ' gbp ' })).body.currency).toBe('GBP');
  });

  it.each([
    ['9.99', 9.99],
    [' 12 ', 12],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['10.', 10],
  ])('accepts price %j as %d', (price, value) => {
    expect(accepted(check({ ...ios, price, currency: 'USD' })).body.price).toBe(value);
  });

  it.each(['1e3', '9,99', 'abc', '$9.99', '+1', '0x10', 'Infinity', 'NaN', '1.2.3', '1 000', '9'.repeat(400)])('refuses price %j', (price) => {
    expect(refused(check({ ...ios, price, currency: 'USD' }))).toMatch(/^price ".*" is not a plain decimal number such as 9\.99$/);
  });

  it('refuses negative prices and introductory prices', () => {
    expect(refused(check({ ...ios, price: '-1', currency: 'USD' }))).toBe('price -1 is negative; it must be 0 or more');
    expect(refused(check({ ...ios, introductory_price: '-0.99' }))).toBe('introductory_price -0.99 is negative; it must be 0 or more');
    expect(refused(check({ ...ios, introductory_price: 'free' }))).toMatch(/^introductory_price "free" is not a plain decimal/);
  });
});

describe('payment_mode, booleans, durations, store_country, ip_address', () => {
  const ios = baseRow('ios');
  it.each([
    ['0', 0],
    ['1', 1],
    ['2', 2],
    ['pay_as_you_go', 0],
    ['PAY_UP_FRONT', 1],
    ['free_trial', 2],
    ['free trial', 2],
  ])('payment_mode %j → %d', (cell, mode) => {
    expect(accepted(check({ ...ios, payment_mode: cell })).body.payment_mode).toBe(mode);
  });

  it.each(['3', '-1', '1.0', 'trial', 'true'])('refuses payment_mode %j', (cell) => {
    expect(refused(check({ ...ios, payment_mode: cell }))).toMatch(/^payment_mode ".*" must be 0 \(pay_as_you_go\), 1 \(pay_up_front\) or 2 \(free_trial\)$/);
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['yes', true],
    ['Yes', true],
    ['false', false],
    ['False', false],
    ['0', false],
    ['no', false],
    ['NO', false],
  ])('boolean %j → %s (is_restore and observer_mode)', (cell, value) => {
    const body = accepted(check({ ...ios, is_restore: cell, observer_mode: cell })).body;
    expect(body.is_restore).toBe(value);
    expect(body.observer_mode).toBe(value);
  });

  it.each(['y', 'n', 'on', 'off', '2', 'truee', 'null'])('refuses boolean %j', (cell) => {
    expect(refused(check({ ...ios, is_restore: cell }))).toMatch(/^is_restore ".*" must be true or false/);
  });

  it.each(['P1M', 'P1Y', 'P7D', 'P2W', 'PT12H', 'P1DT2H', 'p6m'])('accepts duration %j', (cell) => {
    expect(accepted(check({ ...ios, normal_duration: cell, intro_duration: cell, trial_duration: cell })).body.normal_duration).toBe(cell.toUpperCase());
  });

  it.each(['1 month', 'P', 'PT', 'P1.5M', '30d', 'month'])('refuses duration %j', (cell) => {
    expect(refused(check({ ...ios, intro_duration: cell }))).toMatch(/^intro_duration ".*" is not an ISO 8601 duration/);
  });

  it('store_country: two letters, upper-cased', () => {
    expect(accepted(check({ ...ios, store_country: 'de' })).body.store_country).toBe('DE');
    for (const bad of ['USA', 'U', '12', 'U.S.']) expect(refused(check({ ...ios, store_country: bad }))).toMatch(/^store_country ".*" must be a two-letter country code/);
  });

  it('ip_address: IPv4 or IPv6', () => {
    expect(accepted(check({ ...ios, ip_address: '2001:db8::1' })).body.ip_address).toBe('2001:db8::1');
    expect(refused(check({ ...ios, ip_address: '999.1.1.1' }))).toMatch(/^ip_address "999\.1\.1\.1" is not an IPv4 or IPv6 address$/);
  });
});

describe('App User ID rules (RevenueCat refuses these ids)', () => {
  const row = (app_user_id: string): Record<string, string> => ({ ...baseRow('ios'), app_user_id });

  it('accepts 100 characters and refuses 101', () => {
    expect(accepted(check(row('u'.repeat(100)))).body.app_user_id).toHaveLength(100);
    expect(refused(check(row('u'.repeat(101))))).toMatch(/app_user_id is 101 characters long; RevenueCat allows at most 100/);
  });

  it('refuses "/"', () => {
    expect(refused(check(row('team/user')))).toMatch(/app_user_id contains "\/"/);
  });

  it.each(['null', 'none', 'nil', 'anonymous', 'guest', '-1', '0', '[object Object]', 'NULL', 'Guest', 'None'])('refuses the blocklisted value %j', (id) => {
    expect(refused(check(row(id)))).toMatch(/blocklisted value/);
  });

  it('refuses empty and whitespace-only ids', () => {
    expect(refused(check(row('')))).toMatch(/^app_user_id is empty/);
    expect(refused(check(row('   ')))).toMatch(/^app_user_id is empty/);
  });

  it('refuses surrounding whitespace instead of trimming (ids are compared exactly)', () => {
    expect(refused(check(row(' user_1')))).toMatch(/leading or trailing whitespace/);
    expect(refused(check(row('user_1\t')))).toMatch(/leading or trailing whitespace/);
  });

  it('keeps case and inner characters exactly', () => {
    expect(accepted(check(row('User 1:ÄÖ$%')))).toMatchObject({ body: { app_user_id: 'User 1:ÄÖ$%' } });
  });

  it('names the column when it is not app_user_id', () => {
    const plan: ColumnPlan = { fields: { user_id: 'app_user_id', receipt: 'fetch_token' }, attributes: {}, ignored: [] };
    expect(refused(check({ user_id: 'null', receipt: TOKEN }, { platform: 'ios' }, plan))).toMatch(/blocklisted value.*\(column "user_id"\)$/);
  });
});

describe('platform', () => {
  it.each([
    ['ios', 'ios'],
    ['Apple', 'ios'],
    ['app_store', 'ios'],
    ['google', 'android'],
    ['Play_Store', 'android'],
    [' ANDROID ', 'android'],
    ['amazon', 'amazon'],
    ['macos', 'macos'],
    ['stripe', 'stripe'],
  ])('reads the platform cell %j as %s', (cell, platform) => {
    const row = { ...baseRow(platform as Platform), platform: cell };
    expect(accepted(check(row)).platform).toBe(platform);
  });

  it('refuses an unknown platform, naming it and listing the accepted values', () => {
    expect(refused(check({ ...baseRow('ios'), platform: 'windows' }))).toBe(
      'platform "windows" is not one RevenueCat accepts; use one of ios, android, amazon, macos, uikitformac, stripe, roku, paddle',
    );
  });

  it('a non-empty platform cell wins over --platform; an empty one falls back to it', () => {
    expect(accepted(check({ ...baseRow('android'), platform: 'android' }, { platform: 'ios' })).platform).toBe('android');
    expect(accepted(check({ ...baseRow('ios'), platform: '  ' }, { platform: 'macos' })).platform).toBe('macos');
  });

  it('refuses a row with no platform at all', () => {
    expect(refused(check({ ...baseRow('ios'), platform: '' }))).toMatch(/^the platform cell is empty and no --platform was given/);
    const plan: ColumnPlan = { fields: { app_user_id: 'app_user_id', fetch_token: 'fetch_token' }, attributes: {}, ignored: [] };
    expect(refused(check({ app_user_id: 'u', fetch_token: TOKEN }, {}, plan))).toMatch(/^no platform for this row/);
  });

  it('checks the store rules against the platform of the row, not --platform', () => {
    // --platform ios would accept payment_mode; the row says android.
    expect(refused(check({ ...baseRow('android'), payment_mode: '2' }, { platform: 'ios' }))).toBe('payment_mode is iOS/macOS only; remove it for android rows');
  });
});

describe('fetch_token, attributes, other cells', () => {
  const ios = baseRow('ios');

  it('trims surrounding whitespace of the token and sends it otherwise as is', () => {
    expect(accepted(check({ ...ios, fetch_token: `  ${TOKEN}\t` })).body.fetch_token).toBe(TOKEN);
    const jws = 'eyJhbGciOiJFUzI1NiJ9.eyJ0cmFuc2FjdGlvbklkIjoiMSJ9.c2ln+/=';
    expect(accepted(check({ ...ios, fetch_token: jws })).body.fetch_token).toBe(jws);
  });

  it('does not refuse formula-looking content', () => {
    const body = accepted(check({ ...ios, product_id: '=HYPERLINK("http://x")', presented_offering_identifier: '+cmd', $email: '@SUM(A1)' })).body;
    expect(body.product_id).toBe('=HYPERLINK("http://x")');
    expect(body.attributes?.$email?.value).toBe('@SUM(A1)');
  });

  it('omits empty attribute cells and the attributes object when all are empty', () => {
    expect(accepted(check({ ...ios, $email: '' })).body).not.toHaveProperty('attributes');
    expect(accepted(check({ ...ios, $email: '   ' })).body).not.toHaveProperty('attributes');
  });

  it('sends attributes as {value, updated_at_ms: now()}, trimmed, named as planned', () => {
    const plan: ColumnPlan = { ...PLAN, attributes: { $email: '$email', Tier: 'Tier', mail2: '$displayName' } };
    const body = accepted(check({ ...ios, $email: ' a@b.c ', Tier: 'gold', mail2: 'Ann' }, {}, plan)).body;
    expect(body.attributes).toEqual({
      $email: { value: 'a@b.c', updated_at_ms: NOW },
      Tier: { value: 'gold', updated_at_ms: NOW },
      $displayName: { value: 'Ann', updated_at_ms: NOW },
    });
  });

  it('accepts a 500-character attribute value and refuses 501', () => {
    expect(accepted(check({ ...ios, $email: 'a'.repeat(500) })).body.attributes?.$email?.value).toHaveLength(500);
    expect(refused(check({ ...ios, $email: 'a'.repeat(501) }))).toBe('attribute $email is 501 characters long; RevenueCat accepts at most 500');
  });

  it('does not send ignored columns', () => {
    const body = accepted(check({ ...ios, notes: 'call back' })).body;
    expect(JSON.stringify(body)).not.toContain('call back');
  });

  it('builds the complete body of a full iOS row', () => {
    const row = {
      ...ios,
      product_id: 'p',
      price: '9.99',
      currency: 'usd',
      is_restore: 'no',
      payment_mode: 'free_trial',
      subscription_group_id: 'g',
      presented_offering_identifier: 'o',
      observer_mode: '0',
      introductory_price: '0',
      normal_duration: 'P1Y',
      intro_duration: 'P1M',
      trial_duration: 'P7D',
      store_country: 'fr',
      ip_address: '192.0.2.1',
      $email: 'x@y.z',
    };
    expect(accepted(check(row))).toEqual({
      ok: true,
      platform: 'ios',
      body: {
        app_user_id: 'user_1',
        fetch_token: TOKEN,
        product_id: 'p',
        price: 9.99,
        currency: 'USD',
        is_restore: false,
        payment_mode: 2,
        subscription_group_id: 'g',
        presented_offering_identifier: 'o',
        observer_mode: false,
        introductory_price: 0,
        normal_duration: 'P1Y',
        intro_duration: 'P1M',
        trial_duration: 'P7D',
        store_country: 'FR',
        ip_address: '192.0.2.1',
        attributes: { $email: { value: 'x@y.z', updated_at_ms: NOW } },
      },
    });
  });
});

describe('maskToken', () => {
  it('masks tokens to at most 4 + 4 characters, and short tokens entirely', () => {
    expect(maskToken('abcdefghijklmnopqrstuvwxyz')).toBe('abcd…wxyz');
    expect(maskToken('abcdefghijkl')).toBe('abcd…ijkl');
    expect(maskToken('abcdefghijk')).toBe('****');
    expect(maskToken('sub_123')).toBe('****');
    expect(maskToken('')).toBe('****');
    expect(maskToken(TOKEN)).not.toContain(TOKEN.slice(4, -4));
  });
});

describe('token expiry (Google tokens near the ~60-day cut-off)', () => {
  const DAY = 86_400_000;
  const NOW = Date.UTC(2026, 5, 1); // 2026-06-01T00:00:00Z
  const plan = (columns: string[], opts = {}): ColumnPlan => {
    const r = planColumns(columns, { platform: 'android', ...opts });
    if ('error' in r) throw new Error(r.error);
    return r.plan;
  };

  it('finds the expiry column by name (expires_at, expiry_time_ms, any case) or --map column=expires_at, and never sends it', () => {
    expect(plan(['app_user_id', 'product_id', 'token', 'expires_at'])).toEqual({
      fields: { app_user_id: 'app_user_id', product_id: 'product_id', token: 'fetch_token' },
      attributes: {},
      ignored: [],
      expiry: 'expires_at',
    });
    expect(plan(['app_user_id', 'product_id', 'token', 'Expiry_Time_Ms']).expiry).toBe('Expiry_Time_Ms');
    const mapped = plan(['app_user_id', 'product_id', 'token', 'valid_until'], { map: { valid_until: 'expires_at' } });
    expect(mapped.expiry).toBe('valid_until');
    expect(mapped.ignored).toEqual([]);
    // A file without one has no expiry (and no key at all, so plans compare as before).
    expect('expiry' in plan(['app_user_id', 'product_id', 'token'])).toBe(false);
    // expected_expires_at is an expectation, not the token's expiry.
    expect(plan(['app_user_id', 'product_id', 'token', 'expected_expires_at']).expiry).toBeUndefined();
    // Two columns for it: choose with --map, as for any field.
    expect(planColumns(['app_user_id', 'product_id', 'token', 'expires_at', 'expiry_time_ms'], { platform: 'android' })).toEqual({
      error: 'columns "expires_at" and "expiry_time_ms" would all be expires_at; remove all but one, or choose with --map expires_at=expires_at',
    });
    const bad = planColumns(['app_user_id', 'product_id', 'token', 'x'], { platform: 'android', map: { x: 'expiry' } });
    expect('error' in bad && bad.error).toMatch(/^--map x=expiry: "expiry" is not a field; use one of .*, platform, expires_at, or a \$attribute name/);
  });

  it('reads ISO 8601, epoch milliseconds and epoch seconds', () => {
    const at = Date.UTC(2026, 2, 1, 12, 30, 0);
    expect(parseExpiry('2026-03-01T12:30:00Z')).toBe(at);
    expect(parseExpiry('2026-03-01T12:30:00.000Z')).toBe(at);
    expect(parseExpiry('2026-03-01 12:30:00')).toBe(at); // no offset: UTC
    expect(parseExpiry('2026-03-01T14:30:00+02:00')).toBe(at);
    expect(parseExpiry('2026-03-01T07:00:00-0530')).toBe(at);
    expect(parseExpiry('2026-03-01T12:30')).toBe(at);
    expect(parseExpiry('2026-03-01T12:30:00.123456Z')).toBe(at + 123);
    expect(parseExpiry('2026-03-01')).toBe(Date.UTC(2026, 2, 1));
    expect(parseExpiry(String(at))).toBe(at); // 13 digits: milliseconds
    expect(parseExpiry(String(at / 1000))).toBe(at); // 10 digits: seconds
    expect(parseExpiry(' 1772368200 ')).toBe(at);
    expect(parseExpiry('100000000000')).toBe(100_000_000_000); // 12 digits: milliseconds (1973)
    expect(parseExpiry('99999999999')).toBe(99_999_999_999_000); // 11 digits: seconds (year 5138)
    for (const bad of ['', 'soon', '2026-02-30', '2026-13-01', '2026-03-01T25:00:00Z', '1.5e12', '-1772368200', '2026/03/01', '0099-01-01', '12345678901234567']) {
      expect(parseExpiry(bad), bad).toBeUndefined();
    }
  });

  it('flags Google rows that expired more than 60 days ago, leaves other stores and empty cells alone, refuses a malformed value', () => {
    const p = plan(['app_user_id', 'product_id', 'token', 'platform', 'valid_until'], { map: { valid_until: 'expires_at' } });
    const row = (expiry: string): Record<string, string> => ({ app_user_id: 'u', product_id: 'p', token: 't', platform: 'android', valid_until: expiry });
    const iso = (ms: number): string => new Date(ms).toISOString();
    expect(readTokenExpiry(row(iso(NOW - 59 * DAY)), p, 'android', NOW)).toEqual({ ok: true, expiry: { expires_at_ms: NOW - 59 * DAY, past_cutoff: false } });
    expect(readTokenExpiry(row(iso(NOW - GOOGLE_CUTOFF_MS)), p, 'android', NOW)).toEqual({ ok: true, expiry: { expires_at_ms: NOW - 60 * DAY, past_cutoff: false } });
    expect(readTokenExpiry(row(iso(NOW - 61 * DAY)), p, 'android', NOW)).toEqual({ ok: true, expiry: { expires_at_ms: NOW - 61 * DAY, past_cutoff: true } });
    expect(readTokenExpiry(row(String(NOW + 30 * DAY)), p, 'android', NOW)).toEqual({ ok: true, expiry: { expires_at_ms: NOW + 30 * DAY, past_cutoff: false } });
    expect(readTokenExpiry(row(''), p, 'android', NOW)).toEqual({ ok: true });
    expect(readTokenExpiry(row('  '), p, 'android', NOW)).toEqual({ ok: true });
    expect(readTokenExpiry(row('garbage'), p, 'ios', NOW)).toEqual({ ok: true }); // only Google rows use it
    expect(readTokenExpiry(row('next tuesday'), p, 'android', NOW)).toEqual({
      ok: false,
      reason:
        'expires_at "next tuesday" (column "valid_until") is not a time: give ISO 8601 (2025-03-01 or 2025-03-01T12:00:00Z), epoch milliseconds or epoch seconds, or leave it empty',
    });
    const named = plan(['app_user_id', 'product_id', 'token', 'expires_at']);
    expect(readTokenExpiry({ app_user_id: 'u', product_id: 'p', token: 't', expires_at: 'x' }, named, 'android', NOW)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^expires_at "x" is not a time/),
    });
    expect(readTokenExpiry({ app_user_id: 'u', product_id: 'p', token: 't' }, plan(['app_user_id', 'product_id', 'token']), 'android', NOW)).toEqual({ ok: true });
  });

  it('gives the soonest cut-off the highest BullMQ priority (lowest number), within 1…2,097,151; the rest the lowest', () => {
    const exp = (daysFromNow: number, past_cutoff = false): TokenExpiry => ({ expires_at_ms: NOW + daysFromNow * DAY, past_cutoff });
    const order = [-59, -58.5, -30, -1, 0, 10, 365].map((d) => rowPriority(exp(d)));
    for (let i = 1; i < order.length; i++) expect(order[i], `${i}`).toBeGreaterThan(order[i - 1] as number);
    for (const p of order) {
      expect(Number.isInteger(p)).toBe(true);
      expect(p).toBeGreaterThanOrEqual(1);
      expect(p).toBeLessThan(LOWEST_PRIORITY);
    }
    // The scale is absolute (hours since 2020), not relative to now: rows of later chunks and runs compare correctly.
    expect(rowPriority({ expires_at_ms: Date.UTC(2020, 0, 1) - GOOGLE_CUTOFF_MS, past_cutoff: false })).toBe(1);
    expect(rowPriority({ expires_at_ms: Date.UTC(2020, 0, 1) - GOOGLE_CUTOFF_MS + 3_600_000, past_cutoff: false })).toBe(2);
    expect(rowPriority({ expires_at_ms: Date.UTC(1990, 0, 1), past_cutoff: false })).toBe(1);
    expect(rowPriority({ expires_at_ms: Date.UTC(2400, 0, 1), past_cutoff: false })).toBe(LOWEST_PRIORITY - 1);
    expect(LOWEST_PRIORITY).toBe(2 ** 21 - 1); // BullMQ's maximum (PRIORITY_LIMIT; a larger one is refused when the job is added)
    expect(rowPriority(undefined)).toBe(LOWEST_PRIORITY);
    expect(rowPriority(exp(-61, true))).toBe(LOWEST_PRIORITY);
  });
});
