// The ledger's binary records (no Redis): what goes in comes back, a row's record fits a listpack value (a
// failed row's as well as a succeeded one's: it keeps no input), every stored form carries its format byte, and
// the key layout spreads over the slots a Redis Cluster would give it (values checked against a real
// `CLUSTER KEYSLOT`).
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeAnswer,
  decodeConflict,
  decodeHead,
  decodeHistoryEntry,
  decodeIndexValue,
  decodeSuperseded,
  encodeAnswer,
  encodeSuperseded,
  encodePlace,
  encodeUser,
  FORMAT,
  headRecord,
  indexValue,
  keyText,
  LISTPACK_VALUE_MAX,
  RECORD,
  type DecodeContext,
  type RecordContext,
} from '../src/ledger/rowRecord.js';
import { canonicalPayload, payloadHash, recordKey, tokenFingerprint, userHash } from '../src/ledger/rowIdentity.js';
import { keySlot, RedisKeys, SHARD_TAGS, SHARDS } from '../src/redis/keys.js';
import type { Outcome } from '../src/types.js';

const KEY = tokenFingerprint('ios', 'a-token');
const START = Date.parse('2026-11-21T06:00:00.000Z');
const dict = ['pro.monthly', 'premium', 'lifetime', 'com.example.lifetime', 'gold'];
const codes = new Map(dict.map((d, i) => [d, i]));
const code = (text: string): number => {
  if (!codes.has(text)) codes.set(text, codes.size);
  return codes.get(text) as number;
};
const ctx: DecodeContext = { sources: ['x.csv', 'exports/receipts.csv'], base: START, name: (c) => [...codes.keys()][c] ?? '?' };
/** A dictionary that takes failure texts (as the run's does while it has room). */
const withTexts: RecordContext = { sourceNumber: 1, base: START, code, textCode: code };
/** A full dictionary: failure texts stay inline. */
const full: RecordContext = { ...withTexts, textCode: () => undefined };

function roundTrip(o: Outcome, rc: RecordContext = withTexts): Outcome {
  return decodeAnswer(KEY, encodeAnswer(o, rc), ctx);
}

const success: Outcome = {
  status: 'succeeded',
  src: 'exports/receipts.csv',
  line: 1_686_301,
  fp: keyText(KEY),
  platform: 'ios',
  app_user_id: '5f0c1b2a-3d4e-4f50-8a6b-7c8d9e0f1a2b',
  product_id: 'pro.monthly',
  http_status: 200,
  attempts: 1,
  finished_at: '2026-11-21T09:12:23.751Z',
  subscriber: {
    original_app_user_id: '5f0c1b2a-3d4e-4f50-8a6b-7c8d9e0f1a2b',
    active_entitlements: [{ id: 'premium', expires_date: '2026-12-21T09:12:23Z', product_identifier: 'pro.monthly' }],
    product_found: 'subscription',
    product: { expires_date: '2026-12-21T09:12:23Z', is_sandbox: false },
  },
};

describe('row records', () => {
  it('round-trips a succeeded row, and the usual one fits a listpack value with room to spare', () => {
    expect(roundTrip(success)).toEqual(success);
    const record = encodeAnswer(success, withTexts);
    expect(record.length).toBeLessThanOrEqual(41);
    expect(record[1]).toBe(FORMAT.row);
    expect(record.length).toBeLessThan(LISTPACK_VALUE_MAX);
  });

  it.each([
    [
      'no product (Stripe): only the user is checked',
      {
        ...success,
        product_id: undefined,
        subscriber: {
          ...success.subscriber!,
          product_found: 'not_checked',
          product: undefined,
          active_entitlements: [{ id: 'premium', expires_date: '2026-12-21T09:12:23Z', product_identifier: 'prod_X' }],
        },
      },
    ],
    [
      'several entitlements, a lifetime one, other products',
      {
        ...success,
        subscriber: {
          ...success.subscriber!,
          active_entitlements: [
            { id: 'premium', expires_date: '2026-12-21T09:12:23.000Z', product_identifier: 'pro.monthly' },
            { id: 'lifetime', expires_date: null, product_identifier: 'com.example.lifetime' },
          ],
        },
      },
    ],
    ['a lapsed purchase: no entitlement', { ...success, subscriber: { ...success.subscriber!, active_entitlements: [], product: { expires_date: '2025-01-01T00:00:00.123Z' } } }],
    [
      'a one-time purchase in the sandbox environment',
      { ...success, subscriber: { ...success.subscriber!, product_found: 'non_subscription', product: { expires_date: null, is_sandbox: true }, active_entitlements: [] } },
    ],
    ['an expiry in a form that is kept as text', { ...success, subscriber: { ...success.subscriber!, product: { expires_date: '2026-12-21T09:12:23+00:00' } } }],
    [
      '201, nine attempts, an alias as original user',
      { ...success, http_status: 201, attempts: 9, subscriber: { ...success.subscriber!, original_app_user_id: '$RCAnonymousID:0123456789abcdef0123456789abcdef' } },
    ],
    ['another status, no subscriber', { ...success, http_status: 299, subscriber: undefined }],
    ['no HTTP status', { ...success, http_status: undefined }],
    [
      'expectations and import mismatches',
      {
        ...success,
        expect: { entitlement: 'gold', expiresAt: '2026-12-21T00:00:00.000Z', active: false, environment: 'sandbox' },
        mismatches: [{ kind: 'expiry_differs', expected: 'x', actual: 'y' }],
      },
    ],
    ['a Google token past its cut-off', { ...success, platform: 'android', past_google_cutoff: true }],
    ['a finish before the run began (clock skew)', { ...success, finished_at: '2026-11-21T05:59:59.001Z' }],
  ] as [string, Outcome][])('round-trips %s', (_name, outcome) => {
    const clean = JSON.parse(JSON.stringify(outcome)) as Outcome; // undefined fields are absent, as decoded
    expect(roundTrip(clean)).toEqual(clean);
  });

  it('packs the usual App User IDs, and gives equal bytes for equal ids only', () => {
    const ids = [
      '5f0c1b2a-3d4e-4f50-8a6b-7c8d9e0f1a2b',
      '5F0C1B2A-3D4E-4F50-8A6B-7C8D9E0F1A2B',
      '5F0c1b2a-3d4e-4f50-8a6b-7c8d9e0f1a2b',
      '$RCAnonymousID:0123456789abcdef0123456789abcdef',
      '$RCAnonymousID:0123456789ABCDEF',
      '0123abcd',
      '0123abc',
      '4000012',
      '0',
      '007',
      '99999999999999999999',
      'user-1684',
      'Ünïcödé 用户',
      'x'.repeat(100),
    ];
    const encoded = ids.map((id) => encodeUser(id));
    for (const [i, id] of ids.entries()) {
      const rec = headRecord(RECORD.queued, encodePlace(3, 17), encoded[i] as Buffer);
      expect(rec[1]).toBe(FORMAT.row);
      expect(decodeHead(rec)).toEqual({ kind: 'q', sourceNumber: 3, line: 17, appUserId: id });
    }
    expect(new Set(encoded.map((b) => b.toString('hex'))).size).toBe(ids.length);
    expect(encodeUser(ids[0] as string).length).toBe(17);
    expect(encodeUser(ids[3] as string).length).toBe(17);
  });

  const failed: Outcome = {
    status: 'failed',
    src: 'exports/receipts.csv',
    line: 3,
    fp: keyText(KEY),
    platform: 'ios',
    app_user_id: 'u',
    token: 'MIIT…abcd',
    http_status: 400,
    code: 7103,
    reason: 'rc_7103',
    message: 'The receipt is not valid.',
    attempts: 2,
    queued_at: '2026-11-21T06:12:21.000Z',
    finished_at: '2026-11-21T06:12:22.000Z',
  };

  it('keeps a failed row as compactly as a succeeded one: no input, body or token, its texts through the dictionary', () => {
    const receipt = randomBytes(2250).toString('base64'); // 3,000 characters, incompressible
    const withInput: Outcome = {
      ...failed,
      input: { app_user_id: 'u', receipt, note: 'kept' },
      body: { app_user_id: 'u', fetch_token: receipt },
    };
    const record = encodeAnswer(withInput, withTexts);
    // what the ledger keeps: everything but the input, body, masked token and queue time
    const { input: _i, body: _b, token: _t, queued_at: _q, ...kept } = withInput;
    expect(decodeAnswer(KEY, record, ctx)).toEqual(kept);
    expect(record[0]).toBe(RECORD.failed.charCodeAt(0));
    expect(record.length).toBeLessThanOrEqual(24);
    // a UUID user, a product and a reconciliation's subscriber still fit a listpack value
    const reconciled: Outcome = {
      ...kept,
      app_user_id: success.app_user_id,
      product_id: 'pro.monthly',
      http_status: 200,
      reason: 'product_not_in_subscriber',
      message: 'RevenueCat accepted the receipt but the subscriber does not show pro.monthly',
      subscriber: { ...success.subscriber!, active_entitlements: [], product_found: 'absent', product: undefined },
    };
    const clean = JSON.parse(JSON.stringify(reconciled)) as Outcome;
    expect(roundTrip(clean)).toEqual(clean);
    expect(encodeAnswer(clean, withTexts).length).toBeLessThan(LISTPACK_VALUE_MAX);
    // with the dictionary full, the texts are kept inline and come back the same
    expect(roundTrip(clean, full)).toEqual(clean);
    expect(encodeAnswer(clean, full).length).toBeGreaterThan(encodeAnswer(clean, withTexts).length + clean.message!.length);
  });

  it.each([
    ['a timeout: no HTTP status, no code', { ...failed, http_status: undefined, code: undefined, reason: 'timeout', message: 'gave up after 6 attempts: timeout', attempts: 6 }],
    ['no reason and no message', { ...failed, reason: undefined, message: undefined }],
    ['an empty message', { ...failed, message: '' }],
    ['a Google token past its cut-off', { ...failed, platform: 'android', reason: 'google_token_expired', past_google_cutoff: true }],
    ['a message unique to its row, in Unicode', { ...failed, message: 'Quittung ungültig: 用户 #4711 ✓' }],
    ['expectations', { ...failed, expect: { entitlement: 'gold', active: true } }],
  ] as [string, Outcome][])('round-trips a failure: %s', (_name, outcome) => {
    const { token: _t, queued_at: _q, ...kept } = outcome;
    const clean = JSON.parse(JSON.stringify(kept)) as Outcome;
    expect(roundTrip(clean)).toEqual(clean);
    expect(roundTrip(clean, full)).toEqual(clean);
  });

  it('reads back a history entry: the key, then the replaced record', () => {
    const { token: _t, queued_at: _q, ...kept } = failed;
    const entry = Buffer.concat([Buffer.from([KEY.length]), KEY, encodeAnswer(kept, withTexts)]);
    expect(decodeHistoryEntry(entry, ctx)).toEqual(kept);
  });

  it('refuses a record, an index value or a conflict of another format', () => {
    const record = encodeAnswer(success, withTexts);
    record[1] = FORMAT.row + 1;
    expect(() => decodeAnswer(KEY, record, ctx)).toThrow(/format/);
    const value = indexValue(userHash('a'), payloadHash('ios', { app_user_id: 'a', fetch_token: 't' }), 1, 0);
    value[0] = FORMAT.index + 1;
    expect(() => decodeIndexValue(value)).toThrow(/format/);
    const conflict = Buffer.concat([Buffer.from('h'), Buffer.from([FORMAT.conflict + 1]), Buffer.from('r')]);
    expect(() => decodeConflict(conflict)).toThrow(/format/);
    const superseded = encodeSuperseded({ sourceNumber: 0, line: 7 });
    superseded[0] = FORMAT.superseded + 1;
    expect(() => decodeSuperseded(superseded)).toThrow(/format/);
  });

  it("keeps a superseded row's carrier in 5 bytes in a file of a million lines, and no user; refuses the older form that had one", () => {
    const record = encodeSuperseded({ sourceNumber: 3, line: 1_048_575 });
    expect(record.length).toBe(5);
    expect(decodeSuperseded(record)).toEqual({ by: { sourceNumber: 3, line: 1_048_575 } });
    expect(decodeSuperseded(encodeSuperseded({ sourceNumber: 0, line: 2 }))).toEqual({ by: { sourceNumber: 0, line: 2 } });
    // format 1 (09a7fa9): the carrier's place, then the user
    const withUser = Buffer.concat([Buffer.from([1]), encodePlace(0, 7), encodeUser('u1')]);
    expect(() => decodeSuperseded(withUser)).toThrow("a superseded row's record of format 1, this version reads format 2: a ledger written by another version of rc-migrate");
  });

  it('reads back index values and conflicts as the scripts write them', () => {
    const u = userHash('alice');
    const p = payloadHash('ios', { app_user_id: 'alice', fetch_token: 't' });
    expect(decodeIndexValue(indexValue(u, p, 300, 0))).toEqual({ userHash: u, payloadHash: p, runNumber: 300, variant: 0 });
    expect(decodeIndexValue(indexValue(u, p, 7, 2))).toEqual({ userHash: u, payloadHash: p, runNumber: 7, variant: 2 });
    expect(indexValue(u, p, 300, 0).length).toBe(15);
    expect(indexValue(u, p, 300, 0)[0]).toBe(FORMAT.index);
    // admit-4.lua: held/sent, format, scope, key length, key, this row's user, then the other side
    const own = Buffer.concat([KEY, Buffer.from([1])]);
    const inRun = Buffer.concat([
      Buffer.from('h'),
      Buffer.from([FORMAT.conflict]),
      Buffer.from('r'),
      Buffer.from([own.length]),
      own,
      encodeUser('bob'),
      encodePlace(0, 2),
      encodeUser('alice'),
    ]);
    expect(decodeConflict(inRun)).toEqual({ held: true, key: own, appUserId: 'bob', other: { scope: 'run', sourceNumber: 0, line: 2, appUserId: 'alice' } });
    const earlier = Buffer.concat([Buffer.from('s'), Buffer.from([FORMAT.conflict]), Buffer.from('x'), Buffer.from([KEY.length]), KEY, encodeUser('bob'), indexValue(u, p, 4, 0)]);
    expect(decodeConflict(earlier)).toEqual({
      held: false,
      key: KEY,
      appUserId: 'bob',
      other: { scope: 'earlier', entry: { userHash: u, payloadHash: p, runNumber: 4, variant: 0 } },
    });
  });
});

describe('row identity', () => {
  it('keys a row by platform and token; the payload hash sees every sent field but not when attributes were read', () => {
    expect(recordKey('ios', 't')).toBe(tokenFingerprint('ios', 't').toString('base64url'));
    expect(recordKey('ios', 't')).not.toBe(recordKey('macos', 't'));
    expect(tokenFingerprint('ios', 't')).toHaveLength(10);
    const body = { app_user_id: 'u', fetch_token: 't', price: 4.99, currency: 'USD', attributes: { $email: { value: 'a@b.c', updated_at_ms: 1 } } };
    const same = { currency: 'USD', attributes: { $email: { value: 'a@b.c', updated_at_ms: 99 } }, price: 4.99, fetch_token: 't', app_user_id: 'u' };
    expect(payloadHash('ios', same)).toEqual(payloadHash('ios', body));
    expect(canonicalPayload('ios', same)).toBe(canonicalPayload('ios', body));
    for (const changed of [
      { ...body, price: 5.99 },
      { ...body, attributes: { $email: { value: 'x@b.c', updated_at_ms: 1 } } },
      { ...body, attributes: { ...body.attributes, $displayName: { value: 'U', updated_at_ms: 1 } } },
      { ...body, app_user_id: 'v' },
      { ...body, is_restore: true },
    ]) {
      expect(payloadHash('ios', changed)).not.toEqual(payloadHash('ios', body));
    }
    expect(payloadHash('macos', body)).not.toEqual(payloadHash('ios', body));
    expect(userHash('u')).toHaveLength(6);
  });
});

describe('payload hash', () => {
  // The definition the cross-run index holds hashes of (earlier runs' rows): JSON of the sorted fields, attributes
  // by value. payloadHash feeds it to SHA-256 in parts; it must hash the very same text for every body.
  const sortedJson = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  function reference(platform: 'ios' | 'android', body: Record<string, unknown>): string {
    const fields: Record<string, unknown> = { platform };
    for (const [k, v] of Object.entries(body)) {
      if (v === undefined) continue;
      fields[k] = k === 'attributes' ? sortedJson(Object.fromEntries(Object.entries(v as Record<string, { value: string }>).map(([n, a]) => [n, a.value]))) : v;
    }
    return JSON.stringify(sortedJson(fields));
  }
  const sha = (text: string): Buffer => createHash('sha256').update(text).digest().subarray(0, 6);

  it('hashes the JSON text of the sorted fields, whatever the token holds', () => {
    const receipt = randomBytes(6000).toString('base64');
    const tokens = [
      receipt,
      'eyJhbGciOiJFUzI1NiJ9.eyJ0IjoxfQ.c2ln-_',
      '',
      'a"b',
      'back\\slash',
      'tab\there',
      '\u0000\u001f\u007f',
      'café ü 日本',
      'lone \ud800 surrogate',
      'pair \ud83d\ude00',
      `${receipt}"`,
    ];
    const bodies = tokens.flatMap((fetch_token) => [
      { app_user_id: 'u', fetch_token },
      { fetch_token, app_user_id: 'u"1', product_id: 'p', price: 4.99, currency: 'USD', is_restore: false },
      // an attribute named fetch_token comes before the body's own (attributes < fetch_token)
      { app_user_id: 'u', fetch_token, attributes: { fetch_token: { value: '', updated_at_ms: 1 }, $email: { value: 'a@b.c', updated_at_ms: 2 } } },
      { app_user_id: 'u', fetch_token, price: undefined, observer_mode: true, introductory_price: 0.5 },
    ]);
    for (const body of bodies) {
      const text = reference('ios', body);
      expect(canonicalPayload('ios', body)).toBe(text);
      expect(payloadHash('ios', body)).toEqual(sha(text));
    }
  });

  it('stays the hash earlier versions stored (a fixed body)', () => {
    const body = { app_user_id: 'alice', fetch_token: 'MIIT', product_id: 'monthly', price: 4.99, currency: 'USD', attributes: { $email: { value: 'a@b.c', updated_at_ms: 7 } } };
    expect(canonicalPayload('ios', body)).toBe(
      '{"app_user_id":"alice","attributes":{"$email":"a@b.c"},"currency":"USD","fetch_token":"MIIT","platform":"ios","price":4.99,"product_id":"monthly"}',
    );
    // computed by the version before payloadHash fed its text in parts
    expect(payloadHash('ios', body).toString('hex')).toBe('34e715df9a62');
  });
});

describe('key layout on a cluster', () => {
  it('computes slots as Redis does (values from CLUSTER KEYSLOT of redis-server 7.0)', () => {
    expect(['somekey', 'foo{hash_tag}', 'rcm:{0.200}:run:R1:b:17', 'rcm:run:{R1}:meta', '{}x', 'a{}b{c}'].map(keySlot)).toEqual([11058, 2515, 505, 3759, 10595, 7353]);
  });

  it('puts shard n in slots [n × 1024, (n + 1) × 1024), so three masters get 5 or 6 shards each', () => {
    expect(SHARD_TAGS).toHaveLength(SHARDS);
    SHARD_TAGS.forEach((tag, n) => expect(Math.floor(keySlot(`{${tag}}`) / 1024)).toBe(n));
    // redis-cli --cluster create with three masters: slots 0-5460, 5461-10922, 10923-16383
    const perMaster = [0, 0, 0];
    for (const tag of SHARD_TAGS) {
      const slot = keySlot(`{${tag}}`);
      const master = slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2;
      perMaster[master] = (perMaster[master] ?? 0) + 1;
    }
    expect(perMaster.every((n) => n >= 5 && n <= 6)).toBe(true);
  });

  it('spreads the keys of one run over every shard slot, whatever the prefix', () => {
    for (const prefix of ['rcm', '{rcm}', 'bench-1-e2e']) {
      const keys = new RedisKeys(prefix);
      const slots = new Set<number>();
      for (let s = 0; s < SHARDS; s++) {
        const shard = keys.runShard('R1', s);
        const index = keys.index(s);
        // every key a script of this shard touches shares one slot
        const touched = [
          shard.counters,
          `${shard.buckets}0`,
          `${shard.buckets}4711`,
          shard.wide,
          shard.conflicts,
          shard.history,
          shard.errors,
          shard.timeline,
          shard.latency,
          index.state,
          `${index.buckets}9`,
        ];
        expect(new Set(touched.map(keySlot)).size).toBe(1);
        slots.add(keySlot(shard.counters));
      }
      expect(slots.size).toBe(SHARDS);
      const own = keys.run('R1');
      expect(new Set([own.meta, own.sources, own.dict, own.verifyMismatches].map(keySlot)).size).toBe(1);
    }
  });
});
