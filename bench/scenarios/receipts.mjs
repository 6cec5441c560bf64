#!/usr/bin/env node
// Scenario: reading App Store tokens (dist/appstore/readToken.js) on one core. Builds a corpus of real signed
// tokens (bench/lib/appleReceipts.mjs: base64 PKCS#7 receipts of 3-12 KB with random, incompressible padding and
// 1-27 purchases, and ES256 JWS signed transactions), then reads it in a loop for a fixed time:
// - receipts only, signed transactions only, the mix, and receipts encoded as Xcode does (BER, indefinite lengths);
// - for comparison, the reading the reader replaced: asn1js + pkijs (ContentInfo, SignedData, then the content's
//   SET parsed by asn1js.fromBER), on a slice of the same receipts.
// Rows/s are given by wall time and by this process's CPU time (user + system, every thread: GC included), the
// second being the figure that holds on a machine shared with other work. `ingestRatioAt5000` projects what
// reading in line costs an ingester that does 5,000 rows/s without it: 1 / (1 + 5000 / readRate).
//
//   npm run build && node bench/scenarios/receipts.mjs [--count N] [--seconds S] [--jws-share F]
//
// Prints one JSON object on stdout; progress on stderr.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { loadAppleReceipts, makeAppleTokens } from '../lib/appleReceipts.mjs';
import { DIST, log, round } from '../lib/util.mjs';

const TARGET_ROWS_PER_SECOND = 5000;

/** Reads `tokens` round and round for `seconds`; rows/s by wall and by CPU time. */
function measure(read, tokens, seconds, { warmUp = 500, batch = 100 } = {}) {
  for (let i = 0; i < Math.min(tokens.length, warmUp); i++) read(tokens[i]);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let rows = 0;
  while (performance.now() < deadline) {
    for (let i = 0; i < batch; i++) read(tokens[(rows + i) % tokens.length]);
    rows += batch;
  }
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const byCpu = rows / cpuS;
  return {
    rows,
    wallSeconds: round(wallS, 2),
    cpuSeconds: round(cpuS, 2),
    rowsPerSecondWall: Math.round(rows / wallS),
    rowsPerSecondCpu: Math.round(byCpu),
    microsecondsPerRowCpu: round(1e6 / byCpu, 1),
    ingestRatioAt5000: round(1 / (1 + TARGET_ROWS_PER_SECOND / byCpu), 3),
  };
}

/** The way the brief first asked for: pkijs's ContentInfo and SignedData, then asn1js on the content's SET. */
function readWithPkijs(token) {
  const der = Buffer.from(token, 'base64');
  const asn = asn1js.fromBER(new Uint8Array(der));
  if (asn.offset === -1) throw new Error('asn1js could not parse a generated receipt');
  const signed = new pkijs.SignedData({ schema: new pkijs.ContentInfo({ schema: asn.result }).content });
  const content = asn1js.fromBER(signed.encapContentInfo.eContent.getValue());
  return content.result.valueBlock.value.length;
}

/** Only asn1js.fromBER on the content (no certificates, no pkijs): the cheapest use of the library. */
function contentWithAsn1js(content) {
  return asn1js.fromBER(content).result.valueBlock.value.length;
}

function describe(tokens) {
  const lengths = tokens.map((t) => t.token.length).sort((a, b) => a - b);
  const pick = (q) => lengths[Math.min(lengths.length - 1, Math.floor(q * lengths.length))];
  return {
    count: tokens.length,
    base64Chars: { min: lengths[0], median: pick(0.5), p90: pick(0.9), max: lengths.at(-1), mean: Math.round(lengths.reduce((a, b) => a + b, 0) / lengths.length) },
  };
}

export async function receiptsScenario({ count = 2000, seconds = 4, jwsShare = 0.2 } = {}) {
  const { AppleTokenReader, readAppleToken } = await import(pathToFileURL(join(DIST, 'appstore', 'readToken.js')).href);
  const { receiptContent } = await import(pathToFileURL(join(DIST, 'appstore', 'appReceipt.js')).href);
  const { appleSigner } = await loadAppleReceipts();
  const signer = await appleSigner();

  log(`receipts: generating ${count} tokens (${Math.round(jwsShare * 100)}% signed transactions)`);
  const g0 = performance.now();
  const gCpu0 = process.cpuUsage();
  const tokens = await makeAppleTokens(signer, count, { jwsShare });
  const generationS = (performance.now() - g0) / 1000;
  const gCpu = process.cpuUsage(gCpu0);
  const generationCpuS = (gCpu.user + gCpu.system) / 1e6;
  const receipts = tokens.filter((t) => t.kind === 'receipt').map((t) => t.token);
  const jws = tokens.filter((t) => t.kind === 'signed_transaction').map((t) => t.token);

  // Every token must read, and read as what it is: a bench of unread tokens would measure the wrong path.
  let purchases = 0;
  for (const { kind, token } of tokens) {
    const reading = readAppleToken(token);
    if (reading.kind !== kind) throw new Error(`a generated ${kind} read as ${reading.kind}${reading.why ? ` (${reading.why}: ${reading.detail})` : ''}`);
    purchases += reading.purchases.length;
  }

  const result = {
    command: `node bench/scenarios/receipts.mjs --count ${count} --seconds ${seconds} --jws-share ${jwsShare}`,
    node: process.version,
    corpus: {
      ...describe(tokens),
      receipts: describe(tokens.filter((t) => t.kind === 'receipt')),
      signedTransactions: describe(tokens.filter((t) => t.kind === 'signed_transaction')),
      meanPurchases: round(purchases / tokens.length, 1),
    },
    generation: {
      seconds: round(generationS, 2),
      cpuSeconds: round(generationCpuS, 2),
      tokensPerSecondWall: Math.round(count / generationS),
      tokensPerSecondCpu: Math.round(count / generationCpuS),
    },
  };
  // one reader for the whole loop, as the survey pass keeps one (its decoding buffer is reused)
  const reader = new AppleTokenReader();
  const read = (token) => reader.read(token);
  log(`receipts: reading receipts for ${seconds} s`);
  result.readReceipts = measure(read, receipts, seconds);
  log(`receipts: reading signed transactions for ${seconds} s`);
  result.readSignedTransactions = measure(read, jws, seconds);
  log(`receipts: reading the mix for ${seconds} s`);
  result.readMixed = measure(
    read,
    tokens.map((t) => t.token),
    seconds,
  );
  log(`receipts: reading 200 receipts encoded as Xcode does (BER, indefinite lengths) for ${seconds} s`);
  const berTokens = (await makeAppleTokens(signer, 200, { jwsShare: 0, ber: true, seed: 2 })).map((t) => t.token);
  if (berTokens.some((t) => readAppleToken(t).kind !== 'receipt')) throw new Error('a generated BER receipt did not read');
  result.readBerReceipts = measure(read, berTokens, seconds);
  log(`receipts: the same receipts through asn1js + pkijs (reference) for ${seconds} s`);
  result.referencePkijs = measure(readWithPkijs, receipts.slice(0, 200), seconds, { warmUp: 10, batch: 5 });
  const contents = receipts.slice(0, 200).map((t) => new Uint8Array(receiptContent(Buffer.from(t, 'base64'))));
  log(`receipts: asn1js.fromBER on the content alone (reference) for ${seconds} s`);
  result.referenceAsn1jsContentOnly = measure(contentWithAsn1js, contents, seconds, { warmUp: 20, batch: 10 });
  result.goal = {
    rowsPerSecond: TARGET_ROWS_PER_SECOND,
    met: result.readMixed.rowsPerSecondCpu >= TARGET_ROWS_PER_SECOND && result.readReceipts.rowsPerSecondCpu >= TARGET_ROWS_PER_SECOND,
  };
  return result;
}

function parse(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const n = Number(value);
    if (flag === '--count' && Number.isInteger(n) && n > 0) opts.count = n;
    else if (flag === '--seconds' && n > 0) opts.seconds = n;
    else if (flag === '--jws-share' && n >= 0 && n < 1) opts.jwsShare = n;
    else throw new Error(`usage: node bench/scenarios/receipts.mjs [--count N] [--seconds S] [--jws-share F in [0, 1)] (at ${flag})`);
    i++;
  }
  return opts;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await receiptsScenario(parse(process.argv.slice(2)));
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
