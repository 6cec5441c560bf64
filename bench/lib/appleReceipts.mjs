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

/** A user id as exports hold them: a UUID (from the generator, so runs are alike). */
function uuidOf(random) {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
}

/**
 * `count` App Store rows as a real export holds them, in a shuffled order (a user's rows far apart):
 * - users have 1 (55%), 2 (25%), 3 (12%) or 4 (8%) tokens, so that about 30% of the rows are superseded (issue
 *   15's export of real receipts: 27% carried nothing new);
 * - receipt users (1 - jwsShare of the users): receipts stored over the months of a monthly subscription (every
 *   receipt lists every renewal up to its creation; 30% of users have a second subscription); 30% of the receipts
 *   also hold a consumable bought just before, dropped from later receipts (as Apple drops finished consumables),
 *   so an older receipt is superseded unless it holds such a consumable. Each receipt is 3-12 KB of base64
 *   (uniform), padded with random bytes;
 * - StoreKit 2 users (jwsShare): signed transactions, renewals of one subscription: the newest is sent;
 * - sandboxShare of the users are Apple sandbox testers (their purchases are their own);
 * - sharedShare of the receipt users have a second account (a shared iPad, a second login): one more row whose
 *   receipt, made a day after the user's newest, holds the same subscription: a conflict by purchase.
 * Returns `{ rows: [{ app_user_id, product_id, kind, token }], expected }`, `expected` counting what a run
 * must make of them: rows superseded, rows in conflict by purchase, sandbox rows, distinct purchases.
 */
export async function makeAppleHistories(
  signer,
  count,
  { jwsShare = 0.2, sandboxShare = 0.05, sharedShare = 0.01, seed = 11, minLength = 3000, maxLength = 12_000, concurrency = 32 } = {},
) {
  const random = lcg(seed);
  const specs = [];
  const expected = { rows: 0, receipts: 0, signedTransactions: 0, superseded: 0, conflicts: 0, sandbox: 0, purchases: 0, users: 0 };
  const originals = new Set();
  const length = () => minLength + Math.floor(random() * (maxLength - minLength));
  const bundleId = 'com.example.app';
  for (let user = 0; specs.length < count; user++) {
    expected.users++;
    const appUserId = uuidOf(random);
    const sandbox = random() < sandboxShare;
    let next = 1;
    const id = () => String(1_000_000_000_000_000 + user * 1000 + next++);
    const start = Date.UTC(2023, 0, 1) + Math.floor(random() * 600) * DAY_MS;
    const r = random();
    const tokens = Math.min(r < 0.55 ? 1 : r < 0.8 ? 2 : r < 0.92 ? 3 : 4, count - specs.length);
    const renewals = tokens + Math.floor(random() * 10);
    const monthly = { productId: 'com.example.app.monthly', original: id(), ids: Array.from({ length: renewals }, (_, r) => r) };
    monthly.ids = monthly.ids.map((r) => (r === 0 ? monthly.original : id()));
    const renewal = (sub, r, startMs) => ({
      productId: sub.productId,
      transactionId: sub.ids[r],
      originalTransactionId: sub.original,
      purchaseMs: startMs + r * 30 * DAY_MS,
      expiresMs: startMs + (r + 1) * 30 * DAY_MS,
      cancellationMs: null,
    });
    if (random() < jwsShare) {
      originals.add(monthly.original);
      for (let t = 0; t < tokens; t++) {
        const p = renewal(monthly, renewals - tokens + t, start);
        specs.push({
          appUserId,
          user,
          sent: t === tokens - 1,
          productId: p.productId,
          kind: 'signed_transaction',
          spec: { environment: sandbox ? 'Sandbox' : 'Production', bundleId, signedMs: p.purchaseMs + 1000, ...p, type: 'Auto-Renewable Subscription' },
        });
        if (t < tokens - 1) expected.superseded++;
        if (sandbox) expected.sandbox++;
      }
      continue;
    }
    // a second subscription, bought some months after the first
    const second = random() < 0.3 ? { productId: 'com.example.app.pro.monthly', original: id(), at: 1 + Math.floor(random() * (renewals - 1 || 1)) } : undefined;
    if (second) second.ids = Array.from({ length: renewals }, (_, r) => (r === 0 ? second.original : id()));
    const environment = sandbox ? 'ProductionSandbox' : 'Production';
    let newest;
    for (let t = 0; t < tokens; t++) {
      // the receipt stored t-th is made just after renewal `upTo` (the last receipt: after the last renewal)
      const upTo = Math.floor(((t + 1) * renewals) / tokens) - 1;
      const creationMs = start + upTo * 30 * DAY_MS + HOUR_MS;
      const purchases = [];
      for (let r = 0; r <= upTo; r++) purchases.push(renewal(monthly, r, start));
      if (second) for (let r = 0; second.at + r <= upTo; r++) purchases.push(renewal(second, r, start + second.at * 30 * DAY_MS));
      const consumable = random() < 0.3;
      if (consumable) {
        const c = id();
        purchases.push({
          productId: 'com.example.app.coins',
          transactionId: c,
          originalTransactionId: c,
          purchaseMs: creationMs - HOUR_MS / 2,
          expiresMs: null,
          cancellationMs: null,
        });
      }
      for (const p of purchases) originals.add(p.originalTransactionId);
      if (t < tokens - 1 && !consumable) expected.superseded++;
      if (sandbox) expected.sandbox++;
      newest = { environment, bundleId, creationMs, purchases };
      specs.push({ appUserId, user, sent: t === tokens - 1 || consumable, productId: monthly.productId, kind: 'receipt', spec: { ...newest, base64Length: length() } });
    }
    if (specs.length < count && random() < sharedShare) {
      // the same Apple ID under a second account: a later receipt with the subscriptions (not the consumables)
      const purchases = newest.purchases.filter((p) => p.productId !== 'com.example.app.coins');
      specs.push({
        appUserId: uuidOf(random),
        secondAccountOf: user,
        sent: true,
        productId: monthly.productId,
        kind: 'receipt',
        spec: { environment, bundleId, creationMs: newest.creationMs + DAY_MS, purchases, base64Length: length() },
      });
      expected.users++;
      if (sandbox) expected.sandbox++;
    }
  }
  // Shuffled (Fisher-Yates on the generator): an export sorted by row id stores a user's receipts months apart.
  for (let i = specs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [specs[i], specs[j]] = [specs[j], specs[i]];
  }
  // Conflicts by purchase, as the survey counts them: of the rows sent, in file order, the first to hold an
  // original transaction id owns it; a row of another user holding an owned one is a conflict (once per row).
  const owners = new Map();
  for (const s of specs) {
    if (!s.sent) continue;
    const user = s.user ?? `second:${s.secondAccountOf}`;
    const originals = s.kind === 'receipt' ? s.spec.purchases.map((p) => p.originalTransactionId) : [s.spec.originalTransactionId];
    let conflict = false;
    for (const o of originals) {
      const owner = owners.get(o);
      if (owner === undefined) owners.set(o, user);
      else if (owner !== user) conflict = true;
    }
    if (conflict) expected.conflicts++;
  }
  const rows = new Array(specs.length);
  for (let at = 0; at < specs.length; at += concurrency) {
    const batch = specs.slice(at, at + concurrency);
    const tokens = await Promise.all(batch.map(({ kind, spec }) => (kind === 'receipt' ? signer.receipt(spec) : signer.signedTransaction(spec))));
    tokens.forEach((token, i) => {
      const { appUserId, productId, kind } = batch[i];
      rows[at + i] = { app_user_id: appUserId, product_id: productId, kind, token };
    });
  }
  expected.rows = rows.length;
  expected.purchases = originals.size;
  expected.receipts = rows.filter((r) => r.kind === 'receipt').length;
  expected.signedTransactions = rows.length - expected.receipts;
  return { rows, expected };
}
