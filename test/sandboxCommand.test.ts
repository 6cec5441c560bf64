// `rc-migrate sandbox` as commander runs it: the subcommand built by src/sandbox/command.ts, mounted on a
// program the way the CLI mounts it, listening for real, with its flags reaching the knobs.
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { sandboxCommand } from '../src/sandbox/command.js';
import type { Sandbox } from '../src/sandbox/index.js';

async function runSandbox(args: string[], whileRunning: (sandbox: Sandbox, url: string) => Promise<void>): Promise<string> {
  let printed = '';
  const program = new Command('rc-migrate').exitOverride();
  program.addCommand(
    sandboxCommand({
      out: (text) => {
        printed += text;
      },
      untilStopped: async (sandbox) => {
        const url = /listening on (http:\/\/\S+)/.exec(printed)?.[1];
        expect(url).toBe(sandbox.url);
        await whileRunning(sandbox, url!);
      },
    }),
  );
  await program.parseAsync(['sandbox', '--port', '0', ...args], { from: 'user' });
  return printed;
}

const post = (url: string, key: string, platform: string, appUserId: string) =>
  fetch(`${url}/v1/receipts`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}`, 'X-Platform': platform },
    body: JSON.stringify({ app_user_id: appUserId, fetch_token: `t-${appUserId}`, create_events: false, should_update_last_seen_fields: false }),
  });

describe('rc-migrate sandbox', () => {
  it('prints where it listens, applies its flags, and closes when stopped', async () => {
    let closedUrl = '';
    const printed = await runSandbox(
      ['--api-key', 'ios=appl_x', '--api-key', 'sk_all', '--rate-limit-per-minute', '2', '--rate-window', 'fixed', '--no-rate-limit-headers', '--overlap-status', '529'],
      async (sandbox, url) => {
        closedUrl = url;
        expect(sandbox.options()).toMatchObject({
          apiKeys: ['sk_all'],
          platformApiKeys: { ios: ['appl_x'] },
          rateLimitPerMinute: 2,
          rateLimitWindow: 'fixed',
          rateLimitHeaders: 'none',
          overlapStatus: 529,
        });
        expect((await post(url, 'appl_x', 'ios', 'a')).status).toBe(200);
        expect((await post(url, 'appl_x', 'stripe', 'b')).status).toBe(401);
        expect((await post(url, 'sk_all', 'ios', 'c')).status).toBe(200);
        expect((await post(url, 'sk_all', 'ios', 'd')).status).toBe(429);
      },
    );
    expect(printed).toMatch(/^RevenueCat sandbox listening on http:\/\/127\.0\.0\.1:\d+ \(stats: http:\/\/127\.0\.0\.1:\d+\/_sandbox\/stats\)\n$/);
    await expect(fetch(`${closedUrl}/_sandbox/stats`)).rejects.toThrow();
  });

  it('--unlimited and --rate-schedule', async () => {
    await runSandbox(['--rate-limit', '1', '--latency', '500', '--unlimited', '--rate-schedule', '0:3/m'], async (sandbox, url) => {
      expect(sandbox.rateLimit()).toMatchObject({ unlimited: true, schedule: [{ afterSeconds: 0, perMinute: 3 }], current: { perSecond: 0, perMinute: 0 } });
      for (let i = 0; i < 5; i++) expect((await post(url, 'appl_sandbox_key', 'ios', `u${i}`)).status).toBe(200);
    });
  });

  it('refuses a bad flag before listening', async () => {
    await expect(runSandbox(['--rate-schedule', 'soon'], () => Promise.resolve())).rejects.toThrow(/rateLimitSchedule/);
  });
});
