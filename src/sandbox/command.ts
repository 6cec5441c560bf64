// `rc-migrate sandbox`: the commander subcommand, kept with the sandbox so that the CLI only mounts it
// (`program.addCommand(sandboxCommand())`) and the flags stay next to the knobs they set. Flags map one to one
// onto SandboxOptions and go through the same schema as startSandbox() and POST /_sandbox/config.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_APPLE_OPTIONS } from './appleOptions.js';
import { RESTORE_BEHAVIORS } from './applePurchases.js';
import { isPlatform, type Platform } from './contract/platforms.js';
import { parseSandboxOptions, type ParsedSandboxOptions } from './options.js';
import type { Sandbox } from './server.js';

/** Flag values as commander hands them over (strings, string lists, booleans). */
export type SandboxFlags = Record<string, string | string[] | boolean | undefined>;

export interface SandboxCommandIo {
  /** Where the "listening on" line goes (default: stdout). Scripts wait for that line. */
  out?: (text: string) => void;
  /** Resolves when the sandbox should close (default: the first SIGINT or SIGTERM). */
  untilStopped?: (sandbox: Sandbox) => Promise<void>;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/**
 * Flags → options, validated (throws SandboxOptionsError naming each bad flag's knob). `--api-key` takes a
 * catch-all key or `<platform>=<key>`; when any is given, the default catch-all key is not added.
 */
export function sandboxOptionsFromFlags(flags: SandboxFlags): ParsedSandboxOptions {
  const keys = splitApiKeys(asList(flags.apiKey));
  return parseSandboxOptions({
    port: flags.port,
    host: flags.host,
    apiKeys: keys?.catchAll,
    platformApiKeys: keys?.byPlatform,
    revokedApiKeys: asList(flags.revokedKey),
    rateLimitPerSecond: flags.rateLimit,
    rateLimitPerMinute: flags.rateLimitPerMinute,
    rateLimitWindow: flags.rateWindow,
    rateLimitSchedule: flags.rateSchedule,
    rateLimitHeaders: flags.rateLimitHeaders,
    rateLimitBackoffMs: flags.backoffMs,
    unlimited: flags.unlimited,
    overlapStatus: flags.overlapStatus,
    latencyMs: flags.latency,
    latencyJitterMs: flags.latencyJitter,
    fault5xxRate: flags.fault5xx,
    resetRate: flags.resetRate,
    hangRate: flags.hangRate,
    hangMs: flags.hangMs,
    seed: flags.seed,
    projectId: flags.projectId,
    v2RateLimitPerMinute: flags.v2RateLimit,
    v2ConfigRateLimitPerMinute: flags.v2ConfigRateLimit,
    restoreBehavior: flags.restoreBehavior,
    appleKeyId: flags.appleKeyId,
    appleIssuerId: flags.appleIssuerId,
    appleKeyFile: flags.appleKeyFile,
    appleKeyOut: flags.appleKeyOut,
    appleBundleIds: asList(flags.appleBundleId),
    appleTransactionsFile: flags.appleTransactions,
    appleSeedPurchases: flags.appleSeed,
    appleSeedProducts: flags.appleSeedProducts,
    appleSeedRenewals: flags.appleSeedRenewals,
    appleSeedSandboxEvery: flags.appleSeedSandboxEvery,
    appleRatePerSecond: flags.appleRate,
    appleFaultRate: flags.appleFaultRate,
    appleFaultCodes: flags.appleFaultCodes,
    appleKeyRevoked: flags.appleKeyRevoked,
    appleLatencyMs: flags.appleLatency,
  });
}

/** Whether any App Store Server API flag was given: then the key is written out and its ids printed. */
function appleRequested(flags: SandboxFlags): boolean {
  return Object.entries(flags).some(([name, value]) => name.startsWith('apple') && value !== undefined);
}

export function sandboxCommand(io: SandboxCommandIo = {}): Command {
  return new Command('sandbox')
    .description('start the RevenueCat API sandbox (for rehearsals, tests and benchmarks); admin routes under /_sandbox/')
    .option('--port <port>', 'port (0 = any free one)', '4010')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--api-key <key>', 'accepted API key, for every platform, or <platform>=<key> for one platform (repeatable; default appl_sandbox_key)', collect)
    .option('--revoked-key <key>', 'a configured key that starts revoked (repeatable; POST /_sandbox/keys/restore brings it back)', collect)
    .option('--rate-limit <perSecond>', 'v1 requests per second before 429 (0 = none)')
    .option('--rate-limit-per-minute <perMinute>', 'v1 requests per minute before 429 (0 = none): a burst may spend it at once')
    .addOption(new Option('--rate-window <kind>', 'how the v1 windows count: sliding (the last second/minute) or fixed (reset at each boundary)').choices(['sliding', 'fixed']))
    .option('--rate-schedule <steps>', 'v1 limit over time: <seconds>:<limit>[/s|/m],… e.g. 0:100,40:50,90:100')
    .option('--rate-limit-headers [which]', 'RevenueCat-Rate-Limit-* headers on: v2 (default), all (v1 too) or none')
    .option('--no-rate-limit-headers', 'no RevenueCat-Rate-Limit-* headers at all')
    .option('--backoff-ms', 'v1 429 bodies carry backoff_ms (v2 style)')
    .addOption(new Option('--overlap-status <status>', 'status of the same-user overlap answer (code 7638)').choices(['429', '529']))
    .option('--unlimited', 'no rate limit and no latency, whatever the other flags say (throughput benchmarks)')
    .option('--latency <ms>', 'added latency per request')
    .option('--latency-jitter <ms>', 'random extra latency up to this')
    .option('--fault-5xx <rate>', 'share of requests answered with a 5xx (0..1)')
    .option('--reset-rate <rate>', 'share of connections reset (0..1)')
    .option('--hang-rate <rate>', 'share of requests never answered (0..1)')
    .option('--hang-ms <ms>', 'how long a hung request is held')
    .option('--seed <n>', 'seed of the fault generator')
    .option('--project-id <id>', 'v2 project id')
    .option('--v2-rate-limit <perMinute>', 'v2 Customer Information requests per minute (0 = none)')
    .option('--v2-config-rate-limit <perMinute>', 'v2 Project Configuration requests per minute (0 = none)')
    .addOption(
      new Option('--restore-behavior <behavior>', 'a purchase posted for a second App User ID: transfer (default), transfer_if_no_active, keep (7102)').choices(RESTORE_BEHAVIORS),
    )
    .option('--apple-key-id <id>', 'App Store Server API: the key id JWTs must name (kid)')
    .option('--apple-issuer-id <id>', 'App Store Server API: the issuer id JWTs must name (iss)')
    .option('--apple-key-file <path>', 'App Store Server API: the .p8 (PKCS#8 PEM) whose public key checks JWTs (default: a generated key)')
    .option('--apple-key-out <path>', 'App Store Server API: where a generated key is written as a .p8 (default: a temporary file, printed)')
    .option('--apple-bundle-id <id>', 'App Store Server API: an app (bid) it knows (repeatable; default com.example.sandbox)', collect)
    .option(
      '--apple-transactions <file>',
      'App Store Server API: JSON file of transactions ({transactionId, originalTransactionId, productId, bundleId, environment, purchaseDate, expiresDate})',
    )
    .option('--apple-seed <n>', 'App Store Server API: n generated purchases per app (ids from --seed)')
    .option('--apple-seed-products <list>', 'products of the generated purchases: id (monthly subscription), id:nonconsumable, id:consumable, comma-separated')
    .option('--apple-seed-renewals <n>', 'renewal transactions per generated subscription')
    .option('--apple-seed-sandbox-every <n>', 'every n-th generated purchase is in the Sandbox environment')
    .option('--apple-rate <perSecond>', 'App Store Server API lookups per second per app before 429 / 4290000 (0 = none)')
    .option('--apple-fault-rate <rate>', 'share of lookups answered with a retryable error (0..1)')
    .option('--apple-fault-codes <codes>', 'which: 5000001,4040002,4040004,4040006')
    .option('--apple-key-revoked', 'the key starts revoked: every lookup answers 401 (POST /_sandbox/apple/key/restore)')
    .option('--apple-latency <ms>', 'added latency per lookup')
    .action(async (flags: SandboxFlags) => {
      const options = sandboxOptionsFromFlags(flags);
      const apple = appleRequested(flags);
      // A generated key is only worth something written out; without any --apple-… flag it stays in memory.
      if (apple && options.appleKeyFile === undefined && options.appleKeyOut === undefined) {
        options.appleKeyOut = join(tmpdir(), `rc-migrate-sandbox-${process.pid}`, `AuthKey_${options.appleKeyId ?? DEFAULT_APPLE_OPTIONS.appleKeyId}.p8`);
      }
      const { startSandbox } = await import('./server.js');
      const sandbox = await startSandbox(options);
      const out = io.out ?? ((text) => process.stdout.write(text));
      out(`RevenueCat sandbox listening on ${sandbox.url} (stats: ${sandbox.url}/_sandbox/stats)\n`);
      if (apple) {
        const c = sandbox.appleCredentials();
        out(
          `App Store Server API on ${sandbox.url} (either environment; ${sandbox.url}/production, ${sandbox.url}/sandbox): ` +
            `APP_STORE_SERVER_API_URL=${sandbox.url} APPLE_KEY_ID=${c.keyId} APPLE_ISSUER_ID=${c.issuerId} APPLE_PRIVATE_KEY_FILE=${c.keyFile ?? ''} bundle ids ${c.bundleIds.join(',')}\n`,
        );
      }
      await (io.untilStopped ?? untilSignalled)(sandbox);
      await sandbox.close();
    });
}

function asList(value: string | string[] | boolean | undefined): string[] | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  return Array.isArray(value) ? value : [value];
}

/** `ios=appl_x` binds a key to a platform; anything else is a catch-all key. */
function splitApiKeys(values: string[] | undefined): { catchAll: string[]; byPlatform: Partial<Record<Platform, string[]>> } | undefined {
  if (values === undefined) return undefined;
  const catchAll: string[] = [];
  const byPlatform: Partial<Record<Platform, string[]>> = {};
  for (const value of values) {
    const cut = value.indexOf('=');
    const platform = cut > 0 ? value.slice(0, cut).trim().toLowerCase() : '';
    if (isPlatform(platform)) (byPlatform[platform] ??= []).push(value.slice(cut + 1).trim());
    else catchAll.push(value.trim());
  }
  return { catchAll, byPlatform };
}

/** The first SIGINT / SIGTERM closes the sandbox; a second one quits at once. */
function untilSignalled(): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      process.stderr.write(`\n${signal}: closing the sandbox\n`);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
