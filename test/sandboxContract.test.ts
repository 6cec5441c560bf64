// The sandbox answers from its own reading of the documents (src/sandbox/contract/), not from the pipeline's
// field tables: the rows of RevenueCat's per-store parameter reference the pipeline's tests do not reach, and
// the App User ID rules exactly as documented, over real HTTP.
import { afterEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

async function post(platform: string, body: Record<string, unknown>): Promise<{ status: number; code?: number; message?: string }> {
  sandbox ??= await startSandbox();
  const res = await fetch(`${sandbox.url}/v1/receipts`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer appl_sandbox_key', 'X-Platform': platform },
    body: JSON.stringify({ app_user_id: 'u1', fetch_token: 'tok', create_events: false, should_update_last_seen_fields: false, ...body }),
  });
  const json = (await res.json()) as { code?: number; message?: string };
  return { status: res.status, code: json.code, message: json.message };
}

describe('the POST /receipts parameter reference, per store', () => {
  it.each([
    ['observer_mode on Stripe is optional', 'stripe', { fetch_token: 'sub_1', observer_mode: true }, 200],
    ['is_restore on Amazon is optional', 'amazon', { store_user_id: 's', is_restore: true }, 200],
    ['presented_offering_identifier on Google is optional', 'android', { product_id: 'p', presented_offering_identifier: 'o' }, 200],
    ['store_user_id on iOS is not compatible', 'ios', { store_user_id: 's' }, 400],
    ['subscription_group_id on Amazon is not compatible', 'amazon', { store_user_id: 's', subscription_group_id: 'g' }, 400],
    ['ip_address on Google is not compatible', 'android', { product_id: 'p', ip_address: '1.2.3.4' }, 400],
    ['store_country on macOS is optional (iOS/macOS column)', 'macos', { store_country: 'DE' }, 200],
    ['product_id on Roku: no column, not every store takes it', 'roku', { product_id: 'p' }, 400],
    ['a minimal Paddle row', 'paddle', {}, 200],
    ['should_update_last_seen_fields must be a boolean', 'ios', { should_update_last_seen_fields: 'no' }, 400],
  ])('%s', async (_name, platform, body, status) => {
    const reply = await post(platform, body);
    expect(reply.status).toBe(status);
    if (status === 400) expect(reply.code).toBe(7226);
  });
});

describe('App User IDs as documented', () => {
  it.each([
    ['NULL', 400],
    ['[object Object]', 400],
    ['Guest', 400],
    ['undefined', 200],
    [' padded ', 200],
  ])('%j → %i', async (id, status) => {
    const reply = await post('ios', { app_user_id: id });
    expect(reply.status).toBe(status);
    if (status === 400) expect(reply.code).toBe(7256);
  });
});
