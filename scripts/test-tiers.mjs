#!/usr/bin/env node
// The test tiers of `npm test`, one after the other (unit, integration, system: vitest.config.ts), each timed, and
// a table of their durations at the end, which is also the end of `.ci/run`'s output. Every tier runs even when
// an earlier one failed, so one CI run shows every failure; the exit code is 1 if any tier failed.
//
//   node scripts/test-tiers.mjs [tier ...]     (default: unit integration system)
import { spawnSync } from 'node:child_process';

const TIERS = ['unit', 'integration', 'system'];
const asked = process.argv.slice(2);
const unknown = asked.filter((t) => !TIERS.includes(t));
if (unknown.length > 0) {
  console.error(`unknown tier: ${unknown.join(', ')} (tiers: ${TIERS.join(', ')})`);
  process.exit(2);
}
const tiers = asked.length > 0 ? asked : TIERS;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const results = [];
for (const tier of tiers) {
  const started = process.hrtime.bigint();
  const run = spawnSync(npm, ['run', `test:${tier}`], { stdio: 'inherit' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  results.push({ tier, seconds, ok: run.status === 0 });
}

const clock = (s) => (s >= 60 ? `${Math.floor(s / 60)} min ${(s % 60).toFixed(0).padStart(2, '0')} s` : `${s.toFixed(1)} s`);
console.log('\nTest tiers:');
for (const r of results) console.log(`  ${r.tier.padEnd(12)} ${clock(r.seconds).padStart(10)}  ${r.ok ? 'passed' : 'FAILED'}`);
console.log(`  ${'total'.padEnd(12)} ${clock(results.reduce((a, r) => a + r.seconds, 0)).padStart(10)}`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
