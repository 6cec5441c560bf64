// The sandbox's App Store knobs: how a purchase posted for a second user is treated (restore behaviour), and
// the App Store Server API stand-in (README.md, "App Store Server API"): its key, its apps, which transaction
// ids exist, its rate limit and faults. Kept apart from options.ts, which spreads them into its one schema.
import { z } from 'zod';
import { RESTORE_BEHAVIORS, type RestoreBehavior } from './applePurchases.js';
import { appleTransactionRecordSchema, type AppleTransactionRecord } from './appleTransactions.js';

/** The retryable errors the fault knob draws from (Apple's documented retryable codes for this endpoint). */
export const APPLE_FAULT_CODES = [5000001, 4040002, 4040004, 4040006] as const;
export type AppleFaultCode = (typeof APPLE_FAULT_CODES)[number];

export interface AppleSandboxOptions {
  /** RevenueCat's project setting for a purchase posted by a second App User ID. Default `transfer`. */
  restoreBehavior?: RestoreBehavior;
  /** The App Store Connect key id the JWT's `kid` must name. */
  appleKeyId?: string;
  /** The issuer id the JWT's `iss` must name. */
  appleIssuerId?: string;
  /** A `.p8` (PKCS#8 PEM, EC P-256) whose public key checks the JWT signature. Fixed once started. */
  appleKeyFile?: string;
  /** With no `appleKeyFile`: where the generated key pair's private key is written as a `.p8`. Fixed once started. */
  appleKeyOut?: string;
  /** Apps (`bid`) the API knows; the bundle ids of the transactions are added. */
  appleBundleIds?: string[];
  /** Transactions that exist, as given. */
  appleTransactions?: AppleTransactionRecord[];
  /** A JSON file of transactions (an array, or `{transactions: [...]}`), read when set. */
  appleTransactionsFile?: string;
  /** Generated purchases per bundle id (0 = none), deterministic from `seed`. */
  appleSeedPurchases?: number;
  /** Products of the generated purchases, cycled: `id` (auto-renewable, monthly), `id:nonconsumable`, `id:consumable`. */
  appleSeedProducts?: string[];
  /** Renewal transactions per generated subscription (same original transaction id). */
  appleSeedRenewals?: number;
  /** Every n-th generated purchase is in the Sandbox environment (0 = none). */
  appleSeedSandboxEvery?: number;
  /** Lookups per second per app (`bid`) before 429 / 4290000; 0 = no limit. */
  appleRatePerSecond?: number;
  /** Share of lookups answered with a retryable error (0..1), seeded. */
  appleFaultRate?: number;
  /** Which retryable errors the faults are drawn from. */
  appleFaultCodes?: AppleFaultCode[];
  /** Every lookup answers 401 (a key revoked in App Store Connect). */
  appleKeyRevoked?: boolean;
  /** Added before every lookup's answer (past auth, the rate limit and faults). */
  appleLatencyMs?: number;
}

export const DEFAULT_APPLE_OPTIONS = {
  restoreBehavior: 'transfer',
  appleKeyId: 'SBXKEY0001',
  appleIssuerId: '5a1db0c4-7f3e-4e26-9a51-5ab0c0ffee00',
  appleKeyFile: '',
  appleKeyOut: '',
  appleBundleIds: ['com.example.sandbox'],
  appleTransactions: [],
  appleTransactionsFile: '',
  appleSeedPurchases: 0,
  appleSeedProducts: ['sandbox.monthly'],
  appleSeedRenewals: 0,
  appleSeedSandboxEvery: 0,
  appleRatePerSecond: 0,
  appleFaultRate: 0,
  appleFaultCodes: [...APPLE_FAULT_CODES],
  appleKeyRevoked: false,
  appleLatencyMs: 0,
} as const satisfies Required<AppleSandboxOptions>;

/** Knobs that belong to the started server (the key pair is made or read once). */
export const APPLE_FIXED_KNOBS = ['appleKeyFile', 'appleKeyOut'] as const;
/** Knobs whose change rebuilds the catalogue of transactions. */
export const APPLE_CATALOGUE_KNOBS = [
  'appleTransactions',
  'appleTransactionsFile',
  'appleSeedPurchases',
  'appleSeedProducts',
  'appleSeedRenewals',
  'appleSeedSandboxEvery',
  'appleBundleIds',
  'seed',
] as const;

const commaList = (v: unknown): unknown =>
  typeof v === 'string'
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
    : v;
const flag = z.preprocess((v) => (v === 'false' ? false : v === 'true' ? true : v), z.boolean());
const bundleId = z.string().regex(/^[A-Za-z0-9.-]+$/, 'a bundle id is letters, digits, dots and hyphens');
const productSpec = z.string().regex(/^[^\s:,]+(:(sub|nonconsumable|consumable))?$/, 'a product is <id>, <id>:nonconsumable or <id>:consumable');

/** Spread into options.ts's strict schema. */
export const appleOptionShape = {
  restoreBehavior: z.enum(RESTORE_BEHAVIORS).optional(),
  appleKeyId: z
    .string()
    .regex(/^[A-Za-z0-9]{1,64}$/, 'letters and digits')
    .optional(),
  appleIssuerId: z.string().min(1).optional(),
  appleKeyFile: z.string().optional(),
  appleKeyOut: z.string().optional(),
  appleBundleIds: z.preprocess(commaList, z.array(bundleId)).optional(),
  appleTransactions: z.array(appleTransactionRecordSchema).optional(),
  appleTransactionsFile: z.string().optional(),
  appleSeedPurchases: z.coerce.number().int().min(0).max(1_000_000).optional(),
  appleSeedProducts: z.preprocess(commaList, z.array(productSpec).min(1)).optional(),
  appleSeedRenewals: z.coerce.number().int().min(0).max(99).optional(),
  appleSeedSandboxEvery: z.coerce.number().int().min(0).optional(),
  appleRatePerSecond: z.coerce.number().int().min(0).optional(),
  appleFaultRate: z.coerce.number().min(0).max(1).optional(),
  appleFaultCodes: z
    .preprocess(
      (v) => (Array.isArray(v) || typeof v === 'string' ? (commaList(v) as unknown[]).map((c) => Number(c)) : v),
      z.array(z.union(APPLE_FAULT_CODES.map((c) => z.literal(c)) as [z.ZodLiteral<AppleFaultCode>, ...z.ZodLiteral<AppleFaultCode>[]])).min(1),
    )
    .optional(),
  appleKeyRevoked: flag.optional(),
  appleLatencyMs: z.coerce.number().int().min(0).optional(),
};
