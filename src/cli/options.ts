// The CLI's options, declared once and given to every command that needs them, and their mapping to what the
// library takes: config overrides, column options. Values are checked by the library (config.ts, options.ts),
// never here, so the CLI accepts exactly what the library accepts.
import { Option, type Command } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config.js';
import type { ColumnOptions } from '../ingest/columns.js';
import { INPUT_ENCODINGS } from '../ingest/textEncoding.js';
import { PLATFORMS, type Platform } from '../revenuecat/fields.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Flags that override one configuration key each (docs/configuration.md). */
const CONFIG_FLAGS: readonly { flags: string; key: keyof Config; help: string; choices?: readonly string[]; repeatable?: boolean }[] = [
  { flags: '--redis <url>', key: 'redisUrl', help: 'Redis URL (env REDIS_URL)' },
  { flags: '--prefix <prefix>', key: 'prefix', help: 'Redis key prefix (env RC_MIGRATE_PREFIX)' },
  { flags: '--api-url <url>', key: 'apiUrl', help: 'RevenueCat API base URL (env REVENUECAT_API_URL)' },
  { flags: '--rate <rate>', key: 'ratePerSecond', help: 'request rate for the whole queue, across all workers: 20, 20/s or 1200/min (env RC_MIGRATE_RATE)' },
  { flags: '--concurrency <n>', key: 'concurrency', help: 'requests in flight per process (env RC_MIGRATE_CONCURRENCY)' },
  { flags: '--max-attempts <n>', key: 'maxAttempts', help: 'attempts per row for transient failures (env RC_MIGRATE_MAX_ATTEMPTS)' },
  { flags: '--timeout <ms>', key: 'requestTimeoutMs', help: 'request timeout in ms (env RC_MIGRATE_TIMEOUT_MS)' },
  { flags: '--log-level <level>', key: 'logLevel', help: 'fatal|error|warn|info|debug|trace|silent (env LOG_LEVEL)' },
  { flags: '--high-water-mark <rows>', key: 'highWaterMark', help: 'ingest pauses while more rows than this wait in the queue; 0 = never (env RC_MIGRATE_HIGH_WATER_MARK)' },
  {
    flags: '--encoding <encoding>',
    key: 'inputEncoding',
    help: 'text encoding of input files without a byte order mark (env RC_MIGRATE_ENCODING)',
    choices: INPUT_ENCODINGS,
  },
  {
    flags: '--bundle-id <id>',
    key: 'appleBundleIds',
    help: 'bundle id of the App Store app: receipts of other apps are rejected, transaction ids are looked up in it (repeatable; config appleBundleIds)',
    repeatable: true,
  },
  { flags: '--skip-sandbox', key: 'skipSandbox', help: 'reject App Store sandbox and Xcode receipts at ingest instead of sending them (config skipSandbox)' },
  { flags: '--apple-rate <rate>', key: 'appleRate', help: 'App Store Server API lookups per second, across all workers (default 50; env RC_MIGRATE_APPLE_RATE)' },
];
const CONFIG_FILE_FLAG = { flags: '--config <file>', help: 'JSON file of configuration keys, between the defaults and the environment (env RC_MIGRATE_CONFIG)' };

const attribute = (flags: string): string => new Option(flags).attributeName();

/** Every command that talks to Redis or the API takes these. */
export function withConfigFlags(cmd: Command): Command {
  cmd.option(CONFIG_FILE_FLAG.flags, CONFIG_FILE_FLAG.help);
  for (const f of CONFIG_FLAGS) {
    const option = f.choices ? new Option(f.flags, f.help).choices([...f.choices]) : new Option(f.flags, f.help);
    cmd.addOption(f.repeatable ? option.argParser(collect) : option);
  }
  return cmd;
}

/** The configuration: defaults < --config file (or RC_MIGRATE_CONFIG) < environment < flags. */
export function configFrom(flags: Record<string, unknown>): Config {
  const overrides = Object.fromEntries(CONFIG_FLAGS.map((f) => [f.key, flags[attribute(f.flags)]]));
  const configFile = flags[attribute(CONFIG_FILE_FLAG.flags)];
  return loadConfig({ overrides, ...(typeof configFile === 'string' ? { configFile } : {}) });
}

/** `run`, `ingest` and `schedule` read columns with these. */
export function withColumnFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--platform <platform>', 'platform of files without a platform column').choices([...PLATFORMS]))
    .option('--map <column=field>', 'read a column as an API field or a $attribute (repeatable)', collect)
    .option('--attribute <name>', 'send a column as a subscriber attribute (repeatable)', collect)
    .option('--force', 'send rows again even if an earlier run migrated them');
}

export interface ColumnFlags {
  platform?: string;
  map?: string[];
  attribute?: string[];
  force?: boolean;
}

/** `run`, `ingest` and `plan`: what to do with a row whose token another user has. */
export function withConflictFlag(cmd: Command): Command {
  return cmd.addOption(
    new Option('--on-conflict <action>', 'a row whose fetch token another app_user_id has: hold it (listed in conflicts.csv, not sent) or send it anyway')
      .choices(['hold', 'send'])
      .default('hold'),
  );
}

export interface ConflictFlag {
  onConflict?: 'hold' | 'send';
}

/** `--map column=field` pairs become the library's map; which fields are allowed is the library's rule. */
export function columnsFrom(flags: ColumnFlags): ColumnOptions {
  const map: Record<string, string> = {};
  for (const pair of flags.map ?? []) {
    // A field or $attribute name never holds "=", a column name might: split at the last one.
    const eq = pair.lastIndexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new ConfigError(`--map ${pair}: write it as column=field, e.g. --map receipt_data=fetch_token`);
    map[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return { ...(flags.platform ? { platform: flags.platform as Platform } : {}), map, attributes: flags.attribute ?? [] };
}

/** A number flag as the library takes it (a non-number is refused there, with the rule's message). */
export const numberFrom = (value: string | undefined): number | undefined => (value === undefined ? undefined : Number(value));
