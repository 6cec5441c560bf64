// API keys per platform (issue 9, "Keys per app"): a public key belongs to one app, so the sandbox binds keys
// to X-Platform values, answers 401 / 7225 for another platform's rows, an unknown key or a revoked one, and
// revokes / restores a key at runtime. Stats count requests per key, by label, never the key itself.
import { afterEach, describe, expect, it } from 'vitest';
import { keyLabel, startSandbox, type Sandbox, type SandboxOptions } from '../src/sandbox/index.js';

const IOS = 'appl_ios_key_1';
const ANDROID = 'goog_android_key_1';
const SECRET = 'sk_project_secret';

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

async function start(options: SandboxOptions = {}): Promise<Sandbox> {
  sandbox = await startSandbox({ apiKeys: [SECRET], platformApiKeys: { ios: [IOS], android: [ANDROID] }, ...options });
  return sandbox;
}

interface Reply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

const BODIES: Record<string, Record<string, unknown>> = {
  ios: {},
  android: { product_id: 'gold' },
  amazon: { store_user_id: 'amzn1' },
};

async function post(sb: Sandbox, key: string, platform: string, appUserId = `${platform}_user`): Promise<Reply> {
  const res = await fetch(`${sb.url}/v1/receipts`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}`, 'X-Platform': platform },
    body: JSON.stringify({ app_user_id: appUserId, fetch_token: `tok-${appUserId}`, create_events: false, should_update_last_seen_fields: false, ...BODIES[platform] }),
  });
  return { status: res.status, body: await res.json() };
}

async function getSubscriber(sb: Sandbox, key: string, platform?: string): Promise<Reply> {
  const headers: Record<string, string> = { Authorization: `Bearer ${key}` };
  if (platform) headers['X-Platform'] = platform;
  const res = await fetch(`${sb.url}/v1/subscribers/reader`, { headers });
  return { status: res.status, body: await res.json() };
}

async function admin(sb: Sandbox, method: string, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${sb.url}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

describe('keys per platform', () => {
  it("a platform key posts its own platform's rows and gets 401 / 7225 for another's; a catch-all key posts any", async () => {
    const sb = await start();
    expect((await post(sb, IOS, 'ios')).status).toBe(200);
    expect((await post(sb, ANDROID, 'android')).status).toBe(200);

    const crossed = await post(sb, IOS, 'android');
    expect(crossed.status).toBe(401);
    expect(crossed.body.code).toBe(7225);
    expect(crossed.body.message).toMatch(/Invalid API key for X-Platform android.*ios app/);
    expect((await post(sb, ANDROID, 'amazon')).status).toBe(401);

    for (const platform of ['ios', 'android', 'amazon']) expect((await post(sb, SECRET, platform, `s_${platform}`)).status).toBe(200);
    const unknown = await post(sb, 'appl_nobody', 'ios');
    expect(unknown).toMatchObject({ status: 401, body: { code: 7225 } });
    expect(sb.stats().successfulReceipts).toBe(5);
  });

  it('checks a platform key against X-Platform on GET /v1/subscribers only when the header is sent', async () => {
    const sb = await start();
    expect((await getSubscriber(sb, IOS)).status).toBe(201);
    expect((await getSubscriber(sb, IOS, 'ios')).status).toBe(200);
    expect((await getSubscriber(sb, IOS, 'android')).body.code).toBe(7225);
  });

  it('one key may serve several platforms (an App Store app on iOS and macOS)', async () => {
    const sb = await start({ platformApiKeys: { ios: [IOS], macos: [IOS] } });
    expect((await post(sb, IOS, 'macos')).status).toBe(200);
    expect((await post(sb, IOS, 'ios')).status).toBe(200);
    expect((await post(sb, IOS, 'uikitformac')).status).toBe(401);
    expect(sb.keys()).toContainEqual({ label: keyLabel(IOS), platforms: ['ios', 'macos'], revoked: false });
  });

  it('refuses a platform key spelt into apiKeys, and an unknown platform', async () => {
    await expect(start({ apiKeys: ['ios=appl_x'] })).rejects.toThrow(/platformApiKeys/);
    await expect(start({ platformApiKeys: { windows: ['k'] } as never })).rejects.toThrow(/windows/);
  });
});

describe('revoking a key at runtime', () => {
  it('a revoked key answers 401 / 7225 from then on, only for that key, until restored', async () => {
    const sb = await start();
    const revoked = await admin(sb, 'POST', '/_sandbox/keys/revoke', { key: IOS });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked).toEqual([keyLabel(IOS)]);
    // The admin answer names keys by label only.
    expect(JSON.stringify(revoked.body)).not.toContain(IOS);

    const refused = await post(sb, IOS, 'ios');
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe(7225);
    expect(refused.body.message).toMatch(/revoked/);
    expect((await post(sb, ANDROID, 'android')).status).toBe(200);
    expect((await post(sb, SECRET, 'ios', 'via_secret')).status).toBe(200);
    expect((await admin(sb, 'GET', '/_sandbox/keys')).body.keys).toContainEqual({ label: keyLabel(IOS), platforms: ['ios'], revoked: true });
    expect(sb.options().revokedApiKeys).toEqual([IOS]);

    const restored = await admin(sb, 'POST', '/_sandbox/keys/restore', { key: IOS });
    expect(restored.body.restored).toEqual([keyLabel(IOS)]);
    expect((await post(sb, IOS, 'ios')).status).toBe(200);
  });

  it('revokes every key of a platform; 404 for a key or platform that matches none; the library methods do the same', async () => {
    const sb = await start();
    expect((await admin(sb, 'POST', '/_sandbox/keys/revoke', { platform: 'android' })).status).toBe(200);
    expect((await post(sb, ANDROID, 'android')).status).toBe(401);
    expect((await post(sb, IOS, 'ios')).status).toBe(200);
    expect((await admin(sb, 'POST', '/_sandbox/keys/revoke', { key: 'appl_unknown' })).status).toBe(404);
    expect((await admin(sb, 'POST', '/_sandbox/keys/revoke', { platform: 'roku' })).status).toBe(404);
    expect((await admin(sb, 'POST', '/_sandbox/keys/revoke', {})).status).toBe(400);

    expect(sb.revokeKey('appl_unknown')).toBe(false);
    expect(sb.revokeKey(SECRET)).toBe(true);
    expect((await post(sb, SECRET, 'ios', 'x')).status).toBe(401);
    expect(sb.restoreKey(SECRET)).toBe(true);
    expect((await post(sb, SECRET, 'ios', 'x')).status).toBe(200);
  });

  it('a revoked secret key is refused by the v2 reads too', async () => {
    const sb = await start({ revokedApiKeys: [SECRET] });
    const res = await fetch(`${sb.url}/v2/projects/proj_sandbox/customers/x`, { headers: { Authorization: `Bearer ${SECRET}` } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { type: string }).type).toBe('authentication_error');
  });
});

describe('per-key stats', () => {
  it('counts requests, 2xx, 401s and rate-limit 429s per key label; unknown keys under "unknown"', async () => {
    const sb = await start({ rateLimitPerMinute: 4 });
    await post(sb, IOS, 'ios', 'a'); // 200
    await post(sb, IOS, 'android', 'b'); // 401: auth comes before the limit, so not admitted
    await post(sb, ANDROID, 'android', 'c'); // 200
    await post(sb, ANDROID, 'android', 'd'); // 200
    await post(sb, IOS, 'ios', 'e'); // 200
    await post(sb, IOS, 'ios', 'f'); // 429
    await post(sb, 'goog_stranger', 'android', 'g'); // 401
    const byKey = sb.stats().byKey;
    expect(byKey).toEqual({
      [keyLabel(IOS)]: { platforms: ['ios'], requests: 4, accepted: 2, unauthorized: 1, rateLimited: 1 },
      [keyLabel(ANDROID)]: { platforms: ['android'], requests: 2, accepted: 2, unauthorized: 0, rateLimited: 0 },
      unknown: { platforms: [], requests: 1, accepted: 0, unauthorized: 1, rateLimited: 0 },
    });
    expect(JSON.stringify(sb.stats())).not.toContain(IOS);
    expect(keyLabel(IOS)).toMatch(/^appl_ios…[0-9a-f]{4}$/);
    expect(keyLabel(IOS)).not.toBe(keyLabel('appl_ios_key_2'));
  });
});
