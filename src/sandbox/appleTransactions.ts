// Which App Store transactions exist for the App Store Server API stand-in: given as records (a knob or a JSON
// file) and / or generated from the seed. Generated ids are 16 decimal digits laid out as
// `2 SSS BBB PPPPPPP RR` (seed mod 1000, bundle index, purchase index, renewal index), so a test can write the
// ids it expects without asking the sandbox, and a rerun with the same seed has the same ids.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const APPLE_ENVIRONMENTS = ['Production', 'Sandbox'] as const;
export type AppleEnvironment = (typeof APPLE_ENVIRONMENTS)[number];

/** Apple's product types, as a signed transaction's `type` names them. */
export type AppleProductType = 'Auto-Renewable Subscription' | 'Non-Consumable' | 'Consumable' | 'Non-Renewing Subscription';

export interface AppleTransactionRecord {
  transactionId: string;
  originalTransactionId: string;
  productId: string;
  bundleId: string;
  environment: AppleEnvironment;
  /** Epoch milliseconds. */
  purchaseDate: number;
  /** Epoch milliseconds; subscriptions only. */
  expiresDate?: number | undefined;
  type?: AppleProductType | undefined;
  revocationDate?: number | undefined;
}

const DAY_MS = 86_400_000;
const decimalId = z.union([z.string().regex(/^\d{1,20}$/, 'a transaction id is decimal digits'), z.number().int().min(0)]).transform(String);
// Epoch milliseconds or an ISO 8601 date.
const date = z.union([z.number().finite(), z.string().min(1)]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: 'a date is epoch milliseconds or ISO 8601' });
    return z.NEVER;
  }
  return Math.floor(ms);
});

export const appleTransactionRecordSchema = z
  .strictObject({
    transactionId: decimalId,
    originalTransactionId: decimalId.optional(),
    productId: z.string().min(1),
    bundleId: z.string().min(1),
    environment: z.enum(APPLE_ENVIRONMENTS).default('Production'),
    purchaseDate: date,
    expiresDate: date.optional().nullable(),
    type: z.enum(['Auto-Renewable Subscription', 'Non-Consumable', 'Consumable', 'Non-Renewing Subscription']).optional(),
    revocationDate: date.optional().nullable(),
  })
  .transform((r): AppleTransactionRecord => ({
    transactionId: r.transactionId,
    originalTransactionId: r.originalTransactionId ?? r.transactionId,
    productId: r.productId,
    bundleId: r.bundleId,
    environment: r.environment,
    purchaseDate: r.purchaseDate,
    expiresDate: r.expiresDate ?? undefined,
    type: r.type ?? (r.expiresDate == null ? 'Non-Consumable' : 'Auto-Renewable Subscription'),
    revocationDate: r.revocationDate ?? undefined,
  }));

const fileSchema = z.union([z.array(appleTransactionRecordSchema), z.strictObject({ transactions: z.array(appleTransactionRecordSchema) })]);

/** Reads a transactions file; throws an Error naming the file and the first problems. */
export function readTransactionsFile(path: string): AppleTransactionRecord[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`App Store transactions file ${path}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new Error(`App Store transactions file ${path}: ${issues.join('; ')}`);
  }
  return Array.isArray(parsed.data) ? parsed.data : parsed.data.transactions;
}

export interface SeedSpec {
  seed: number;
  bundleIds: readonly string[];
  purchases: number;
  products: readonly string[];
  renewals: number;
  sandboxEvery: number;
  /** Dates are laid out back from here, so the newest renewal of every subscription is active. */
  nowMs: number;
}

/**
 * Generated purchases: per bundle, `purchases` of the products in turn. A subscription is `renewals + 1`
 * monthly transactions sharing the first one's id as original transaction id, the last expiring 29 days from
 * now; a one-time purchase is one transaction.
 */
export function seedTransactions(spec: SeedSpec): AppleTransactionRecord[] {
  const out: AppleTransactionRecord[] = [];
  const seedPart = ((spec.seed % 1000) + 1000) % 1000;
  spec.bundleIds.forEach((bundleId, b) => {
    for (let p = 0; p < spec.purchases; p++) {
      const [productId = 'sandbox.monthly', kind = 'sub'] = (spec.products[p % spec.products.length] ?? 'sandbox.monthly').split(':');
      const environment: AppleEnvironment = spec.sandboxEvery > 0 && p % spec.sandboxEvery === spec.sandboxEvery - 1 ? 'Sandbox' : 'Production';
      const id = (r: number): string => `2${pad(seedPart, 3)}${pad(b % 1000, 3)}${pad(p, 7)}${pad(r, 2)}`;
      if (kind !== 'sub') {
        const type: AppleProductType = kind === 'consumable' ? 'Consumable' : 'Non-Consumable';
        out.push({ transactionId: id(0), originalTransactionId: id(0), productId, bundleId, environment, purchaseDate: spec.nowMs - DAY_MS * (1 + (p % 28)), type });
        continue;
      }
      for (let r = 0; r <= spec.renewals; r++) {
        const purchaseDate = spec.nowMs - DAY_MS - (spec.renewals - r) * 30 * DAY_MS;
        out.push({
          transactionId: id(r),
          originalTransactionId: id(0),
          productId,
          bundleId,
          environment,
          purchaseDate,
          expiresDate: purchaseDate + 30 * DAY_MS,
          type: 'Auto-Renewable Subscription',
        });
      }
    }
  });
  return out;
}

/** The transactions the API answers for, by id. */
export class AppleTransactionCatalogue {
  private readonly byId = new Map<string, AppleTransactionRecord[]>();
  readonly bundleIds: ReadonlySet<string>;

  constructor(records: readonly AppleTransactionRecord[], bundleIds: readonly string[]) {
    const bundles = new Set(bundleIds);
    for (const record of records) {
      bundles.add(record.bundleId);
      const list = this.byId.get(record.transactionId) ?? [];
      // A later record of the same id, app and environment replaces the earlier one (a file overriding the seed).
      const at = list.findIndex((r) => r.bundleId === record.bundleId && r.environment === record.environment);
      if (at >= 0) list[at] = record;
      else list.push(record);
      this.byId.set(record.transactionId, list);
    }
    this.bundleIds = bundles;
  }

  /** The transaction of that app in one of the environments (the first listed wins), or undefined. */
  find(transactionId: string, bundleId: string, environments: readonly AppleEnvironment[]): AppleTransactionRecord | undefined {
    const list = this.byId.get(transactionId) ?? [];
    for (const environment of environments) {
      const record = list.find((r) => r.bundleId === bundleId && r.environment === environment);
      if (record) return record;
    }
    return undefined;
  }

  list(): AppleTransactionRecord[] {
    return [...this.byId.values()].flat().map((r) => ({ ...r }));
  }

  get size(): number {
    let n = 0;
    for (const list of this.byId.values()) n += list.length;
    return n;
  }
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0').slice(-width);
}
