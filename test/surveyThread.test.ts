// The survey pass with its worker thread (ingest/surveyThread.ts) decides exactly as the pass alone does: every
// place's decision, every conflict, the counts, and what the sending pass reads of each token; and it stops
// cleanly when the pass is interrupted or the worker fails. The worker is the build's (dist/ingest/surveyWorker.js:
// `npm test` builds first), the only form a worker thread can run.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandSource } from '../src/ingest/sources.js';
import { surveyPass, type SurveyDecisions, type SurveyPassOptions } from '../src/ingest/surveyPass.js';
import { tokenFingerprint } from '../src/ledger/rowIdentity.js';
import { appleSigner, type AppleSigner } from './support/appleReceipts.js';

const WORKER = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'ingest', 'surveyWorker.js'));
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const NOW = T0 + 200 * DAY;
const BUNDLE = 'com.example.app';

/** A user's subscription as three receipts over the months (each newer one holds every renewal of the older). */
async function history(s: AppleSigner, user: number, opts: { environment?: string; bundleId?: string; consumable?: boolean } = {}): Promise<string[]> {
  const original = String(2_000_000_000_000_000 + user * 100);
  const renewals = Array.from({ length: 7 }, (_, r) => ({
    productId: 'monthly',
    transactionId: r === 0 ? original : String(Number(original) + r),
    originalTransactionId: original,
    purchaseMs: T0 + r * 30 * DAY,
    expiresMs: T0 + (r + 1) * 30 * DAY,
  }));
  const coins = { productId: 'coins', transactionId: String(Number(original) + 50), purchaseMs: T0 + DAY, quantity: 1 };
  return Promise.all(
    [2, 4, 7].map((held, i) =>
      s.receipt({
        environment: opts.environment ?? 'Production',
        bundleId: opts.bundleId ?? BUNDLE,
        creationMs: T0 + held * 30 * DAY,
        // the consumable only in the oldest receipt: that one is sent too
        purchases: [...renewals.slice(0, held), ...(opts.consumable && i === 0 ? [coins] : [])],
        base64Length: 3000 + ((user * 997 + i * 131) % 6000),
      }),
    ),
  );
}

describe('the survey pass with its worker thread', () => {
  let dir: string;
  let file: string;
  let lines = 0;

  beforeAll(async () => {
    if (!existsSync(WORKER)) throw new Error(`${WORKER.pathname} is missing: run npm run build first (npm test does)`);
    const s = await appleSigner();
    dir = await mkdtemp(join(tmpdir(), 'rcm-survey-thread-'));
    const rows: string[] = [];
    for (let u = 0; u < 240; u++) {
      const tokens = await history(s, u, {
        consumable: u % 7 === 0,
        environment: u % 11 === 0 ? 'ProductionSandbox' : 'Production',
        bundleId: u % 13 === 5 ? 'com.other.app' : BUNDLE,
      });
      // newest first for some users, oldest first for others
      for (const token of u % 2 ? tokens : [...tokens].reverse()) rows.push(`ios,user-${u},${token}`);
      // a second account holding the first user's newest receipt (a conflict by purchase), a copy of a row
      if (u % 40 === 3) rows.push(`ios,second-${u},${tokens[2]}`);
      if (u % 50 === 9) rows.push(`ios,user-${u},${tokens[0]}`);
    }
    for (let t = 0; t < 30; t++) {
      rows.push(
        `ios,jws-${t % 10},${await s.signedTransaction({ environment: 'Production', bundleId: BUNDLE, signedMs: T0 + t * DAY, transactionId: String(3_000_000 + t), originalTransactionId: String(3_000_000 + (t % 10)), productId: 'monthly', purchaseMs: T0 + t * DAY, expiresMs: NOW + t * DAY })}`,
      );
    }
    rows.push('ios,odd-user,bm90IGEgcmVjZWlwdA==', 'android,g-user,some-google-token');
    // shuffled, deterministically, so a user's rows are far apart and in no order
    let seed = 5;
    for (let i = rows.length - 1; i > 0; i--) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const j = (seed >>> 8) % (i + 1);
      [rows[i], rows[j]] = [rows[j] as string, rows[i] as string];
    }
    lines = rows.length + 1;
    file = join(dir, 'ios.csv');
    await writeFile(file, `platform,app_user_id,fetch_token\n${rows.join('\n')}\n`);
  }, 120_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const options = (extra: Partial<SurveyPassOptions> = {}): SurveyPassOptions => ({
    columns: {},
    check: { now: () => NOW },
    rules: { bundleIds: [BUNDLE] },
    sourceNumber: () => Promise.resolve(0),
    ...extra,
  });

  /** Everything the sending pass asks of a survey, for every line of the file. */
  function answers(d: SurveyDecisions | undefined, tokens: Map<number, string>): unknown {
    if (!d) return undefined;
    const byLine = [];
    for (let line = 2; line <= lines; line++) {
      const token = tokens.get(line) ?? '';
      const facts = d.factsAt(file, line, token);
      byLine.push({
        line,
        decision: d.decisionFor(file, line),
        conflict: d.conflictAt(file, line),
        facts: facts && { problem: facts.problem, purchases: facts.purchases, active: facts.soonestActive(NOW), key: facts.key?.toString('hex'), plainToken: facts.plainToken },
      });
    }
    return { counts: d.result.counts, activeRows: d.activeRows, byLine };
  }

  it('decides every row exactly as the pass alone does', async () => {
    const tokens = new Map<number, string>();
    for await (const entry of expandSource(file)) for await (const item of entry.open()) if (item.kind === 'record') tokens.set(item.line, item.values.fetch_token ?? '');
    const alone = answers(await surveyPass(expandSource(file), options()), tokens);
    const threaded = answers(await surveyPass(expandSource(file), options({ worker: WORKER })), tokens);
    expect(threaded).toEqual(alone);
    // the file holds what the survey is for: superseded receipts, conflicts, another app's, sandbox, unread
    const { counts, byLine } = alone as {
      counts: Record<string, number>;
      byLine: { decision: { kind: string }; conflict?: unknown; facts?: { problem?: string; key?: string } }[];
    };
    expect(counts).toMatchObject({ unread: 1, superseded: expect.any(Number) });
    expect(counts.superseded).toBeGreaterThan(300);
    expect(counts.sandbox).toBeGreaterThan(0);
    expect(byLine.filter((l) => l.conflict).length).toBeGreaterThan(0);
    expect(byLine.some((l) => l.facts?.problem?.includes('com.other.app'))).toBe(true);
    // the fingerprint kept is the token's, as admission would compute it
    const line = byLine.findIndex((l) => l.facts?.key !== undefined) + 2;
    expect(byLine[line - 2]?.facts?.key).toBe(tokenFingerprint('ios', tokens.get(line) ?? '').toString('hex'));
  });

  it('stops with the pass: interrupted with rows in the worker, it answers nothing', async () => {
    const controller = new AbortController();
    let sources = 0;
    const twice = async function* () {
      yield* expandSource(file);
      yield* expandSource(file);
    };
    const pass = surveyPass(twice(), {
      ...options({ worker: WORKER, signal: controller.signal }),
      // Ctrl-C as the second source is reached: the first one's rows are with the worker
      sourceNumber: () => {
        if (++sources === 2) controller.abort();
        return Promise.resolve(sources - 1);
      },
    });
    expect(await pass).toBeUndefined();
    expect(sources).toBe(2);
  });

  it('starts no thread for sources without an App Store row', async () => {
    const google = join(dir, 'google.csv');
    await writeFile(google, 'platform,app_user_id,fetch_token,product_id\nandroid,u1,token-1,monthly\nandroid,u2,token-2,monthly\n');
    // a worker that could not start: never asked to
    const broken = pathToFileURL(join(dir, 'never-started.mjs'));
    const decisions = await surveyPass(expandSource(google), options({ worker: broken }));
    expect(decisions?.result.counts).toEqual({ read: 0, unread: 0, sandbox: 0, purchases: 0, superseded: 0, bundles: {} });
  });

  it("fails with the worker's error, not silently", async () => {
    const broken = pathToFileURL(join(dir, 'broken-worker.mjs'));
    await writeFile(broken, "throw new Error('worker could not start');\n");
    await expect(surveyPass(expandSource(file), options({ worker: broken }))).rejects.toThrow('worker could not start');
  });
});
