#!/usr/bin/env node
// Copies the table of the last full chaos run (test/.results/chaos-results.md, written by `npm run chaos` and
// ignored by git) into README.md, between the chaos-table markers. Nothing else in the README changes, so the
// numbers the README quotes move only when someone decides to publish a run.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'test', '.results', 'chaos-results.md');
const README = join(ROOT, 'README.md');
const START = '<!-- chaos-table:start (npm run chaos:table writes this region from test/.results/chaos-results.md) -->';
const END = '<!-- chaos-table:end -->';

function fail(message) {
  console.error(`chaos-table: ${message}`);
  process.exit(1);
}

let results;
try {
  results = readFileSync(RESULTS, 'utf8');
} catch {
  fail(`${relative(ROOT, RESULTS)} is missing: run \`npm run chaos\` first (only a run where every scenario passes writes it)`);
}

const table = results.split('\n').filter((line) => line.startsWith('|'));
if (table.length < 3) fail(`${relative(ROOT, RESULTS)} holds no table`);
// "Chaos suite (`npm run chaos`), 2026-11-21, 2 CPUs, Node v20.20.2." — when and where the numbers were taken.
const run = /\), (\d{4}-\d{2}-\d{2}), (\d+) CPUs, Node (v[\d.]+)\./.exec(results);
const measured = run ? `\n\nMeasured ${run[1]} on ${run[2]} CPUs, Node ${run[3]}.` : '';

const readme = readFileSync(README, 'utf8');
const start = readme.indexOf(START);
const end = readme.indexOf(END);
if (start < 0 || end < start) fail(`README.md lacks the markers ${START} … ${END}`);

const region = `${START}\n${table.join('\n')}${measured}\n${END}`;
const next = readme.slice(0, start) + region + readme.slice(end + END.length);
if (next === readme) {
  console.log('chaos-table: README.md already shows these numbers');
} else {
  writeFileSync(README, next);
  console.log(`chaos-table: README.md now shows the chaos run${run ? ` of ${run[1]}` : ''} (${table.length - 2} scenarios)`);
}
