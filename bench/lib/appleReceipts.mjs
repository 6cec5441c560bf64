// Real App Store tokens for the benches: the generator of the tests (test/support/appleReceipts.ts: PKCS#7
// SignedData receipts and ES256 JWS signed transactions, a throw-away key), compiled on the fly with TypeScript's
// transpileModule so that the benches and the tests share one generator and neither keeps a copy. dist/ holds
// only src/, hence the compile here.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { ROOT } from './util.mjs';

/** The module test/support/appleReceipts.ts, compiled: `{ appleSigner }`. */
export async function loadAppleReceipts() {
  const source = await readFile(join(ROOT, 'test', 'support', 'appleReceipts.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  // The compiled file lives in a temporary folder, where `pkijs` would not resolve: its packages are pinned to
  // the repository's node_modules first.
  const code = outputText.replace(/from '([^'.][^']*)'/g, (whole, spec) => (spec.startsWith('node:') ? whole : `from '${import.meta.resolve(spec)}'`));
  const dir = await mkdtemp(join(tmpdir(), 'rc-migrate-bench-apple-'));
  try {
    const file = join(dir, 'appleReceipts.mjs');
    await writeFile(file, code);
    return await import(pathToFileURL(file).href);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A small deterministic generator (LCG), so two runs build the same mix of sizes and purchases. */
function lcg(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * One user's purchases as a receipt lists them: a subscription with its renewals (every renewal is a transaction
 * of the same original transaction), sometimes a second one, and a few consumables.
 */
function purchasesFor(random, userIndex, baseMs) {
  const purchases = [];
  let next = 1;
  const id = () => String(1_000_000_000_000_000 + userIndex * 1000 + next++);
  const subscriptions = 1 + (random() < 0.3 ? 1 : 0);
  for (let s = 0; s < subscriptions; s++) {
    const original = id();
    const renewals = 1 + Math.floor(random() * 12);
    let start = baseMs - renewals * 30 * DAY_MS;
    for (let r = 0; r < renewals; r++) {
      purchases.push({
        productId: s === 0 ? 'com.example.app.monthly' : 'com.example.app.pro.monthly',
        transactionId: r === 0 ? original : id(),
        originalTransactionId: original,
        purchaseMs: start,
        expiresMs: start + 30 * DAY_MS,
        cancellationMs: null,
      });
      start += 30 * DAY_MS;
    }
  }
  const consumables = Math.floor(random() * 4);
  for (let c = 0; c < consumables; c++) {
    const t = id();
    purchases.push({ productId: 'com.example.app.coins', transactionId: t, originalTransactionId: t, purchaseMs: baseMs - c * DAY_MS, expiresMs: null, cancellationMs: null });
  }
  return purchases;
}

/**
 * `count` distinct tokens, a share `jwsShare` of them StoreKit 2 signed transactions, the rest base64 app receipts
 * of 3-12 KB (uniform), 1-27 purchases each; `ber`: receipts encoded as Xcode does (indefinite lengths). Returns [{ kind: 'receipt' | 'signed_transaction', token }].
 */
export async function makeAppleTokens(signer, count, { jwsShare = 0.2, ber = false, seed = 1, minLength = 3000, maxLength = 12_000, concurrency = 32 } = {}) {
  const random = lcg(seed);
  const baseMs = Date.UTC(2025, 0, 1);
  const specs = [];
  for (let i = 0; i < count; i++) {
    const purchases = purchasesFor(random, i, baseMs + Math.floor(random() * 300) * DAY_MS);
    const environment = random() < 0.1 ? 'ProductionSandbox' : 'Production';
    const creationMs = purchases.reduce((max, p) => Math.max(max, p.purchaseMs), 0) + HOUR_MS;
    if (random() < jwsShare) {
      const p = purchases[0];
      specs.push({
        kind: 'signed_transaction',
        spec: {
          environment: environment === 'Production' ? 'Production' : 'Sandbox',
          bundleId: 'com.example.app',
          signedMs: creationMs,
          ...p,
          type: 'Auto-Renewable Subscription',
        },
      });
    } else {
      const base64Length = minLength + Math.floor(random() * (maxLength - minLength));
      specs.push({ kind: 'receipt', spec: { environment, bundleId: 'com.example.app', creationMs, purchases, base64Length, ber } });
    }
  }
  const out = new Array(count);
  for (let at = 0; at < count; at += concurrency) {
    const batch = specs.slice(at, at + concurrency);
    const tokens = await Promise.all(batch.map(({ kind, spec }) => (kind === 'receipt' ? signer.receipt(spec) : signer.signedTransaction(spec))));
    tokens.forEach((token, i) => (out[at + i] = { kind: batch[i].kind, token }));
  }
  return out;
}
