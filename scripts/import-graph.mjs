#!/usr/bin/env node
// Checks the import graph of src/ against the dependency rules of issue 10: no import cycle between files, none
// of the forbidden edges between folders below, and a sandbox that imports nothing outside src/sandbox. Every
// import counts, `import type` and dynamic `import()` included: a type-only edge still ties one folder's
// meaning to another's. Prints what breaks a rule and exits 1; prints a one-line count and exits 0 otherwise.
//
//   node scripts/import-graph.mjs [--root DIR] [--graph]
//
// --root: the source folder (default: src/ next to this script); --graph: also print every folder → folder edge.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * Folder → folder edges that must not exist. A "folder" is the first path segment under src/; a file at the
 * top of src/ (cli.ts, config.ts, types.ts …) is a folder of its own, named without its extension.
 */
export const FORBIDDEN = [
  ['workers', 'reports'],
  ['revenuecat', 'workers'],
  ['revenuecat', 'reports'],
  ['ledger', 'reports'],
  ['schedule', 'commands'],
  ['ingest', 'workers'],
  ['ingest', 'reports'],
  ['reports', 'workers'],
  // workers report through workers/workerReport.ts, which the metrics implement and the session hands in
  ['workers', 'metrics'],
];

/** Folders that may import nothing outside themselves (packages are fine). */
export const ISOLATED = ['sandbox'];

const SOURCE = /\.(ts|mts|cts)$/;

function sourceFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (SOURCE.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Every module specifier of a file, with how it is imported: 'value', 'type' or 'dynamic'. */
function specifiers(path) {
  const file = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = ts.isImportDeclaration(node) ? node.importClause : undefined;
      const typeOnly = ts.isImportDeclaration(node)
        ? clause !== undefined &&
          (clause.isTypeOnly ||
            (!clause.name &&
              clause.namedBindings !== undefined &&
              ts.isNamedImports(clause.namedBindings) &&
              clause.namedBindings.elements.length > 0 &&
              clause.namedBindings.elements.every((e) => e.isTypeOnly)))
        : node.isTypeOnly;
      found.push({ spec: node.moduleSpecifier.text, kind: typeOnly ? 'type' : 'value' });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      found.push({ spec: node.arguments[0].text, kind: 'dynamic' });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push({ spec: node.argument.literal.text, kind: 'type' });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/** The file a relative specifier names: `./x.js` is ./x.ts in the sources (NodeNext resolution). */
function resolveSpecifier(from, spec, known) {
  const base = resolve(dirname(from), spec);
  const candidates = [base, base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base.replace(/\.cjs$/, '.cts'), `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => known.has(c)) ?? base;
}

/** The folder of a path relative to the root (see FORBIDDEN); '..' for anything outside the root. */
export function folderOf(rel) {
  if (rel.startsWith('..')) return '..';
  const parts = rel.split(sep);
  return parts.length === 1 ? parts[0].replace(SOURCE, '') : parts[0];
}

/** Edges between files under `root`: { from, to, kind } with paths relative to root. */
export function importGraph(root) {
  const files = sourceFiles(root);
  const known = new Set(files);
  const edges = [];
  for (const file of files) {
    for (const { spec, kind } of specifiers(file)) {
      if (!spec.startsWith('.')) continue; // a package
      const target = resolveSpecifier(file, spec, known);
      edges.push({ from: relative(root, file), to: relative(root, target), kind });
    }
  }
  return { files: files.map((f) => relative(root, f)), edges };
}

/**
 * The strongly connected components of a directed graph (Tarjan) that hold a loop: with `withPath`, one example
 * loop through each, from its first node in name order; else its members in name order.
 */
function loops(nodes, pairs, withPath = true) {
  const next = new Map(nodes.map((n) => [n, new Set()]));
  for (const [a, b] of pairs) next.get(a)?.add(b);
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  let counter = 0;
  const strong = (v) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)) {
      if (!next.has(w)) continue;
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || next.get(v).has(v)) components.push(component);
    }
  };
  for (const n of nodes) if (!index.has(n)) strong(n);
  return components.map((component) => {
    const members = new Set(component);
    if (!withPath) return [...component].sort();
    const start = [...component].sort()[0];
    const path = [start];
    const seen = new Set([start]);
    for (;;) {
      const targets = [...next.get(path[path.length - 1])].filter((t) => members.has(t)).sort();
      if (targets.includes(start)) return [...path, start];
      const step = targets.find((t) => !seen.has(t));
      if (step === undefined) return [...path, start]; // cannot happen in a component; keeps the walk finite
      path.push(step);
      seen.add(step);
    }
  });
}

/** Import cycles between files. */
export function cycles(graph) {
  return loops(
    graph.files,
    graph.edges.map((e) => [e.from, e.to]),
  );
}

/** Groups of folders that import each other round (no rule of issue 10; shown as notes). */
export function folderCycles(graph) {
  const pairs = graph.edges.map((e) => [folderOf(e.from), folderOf(e.to)]).filter(([a, b]) => a !== b);
  return loops([...new Set(graph.files.map(folderOf))].sort(), pairs, false);
}

/** Edges that break FORBIDDEN or ISOLATED. */
export function forbiddenEdges(graph) {
  const out = [];
  for (const e of graph.edges) {
    const a = folderOf(e.from);
    const b = folderOf(e.to);
    if (a === b) continue;
    if (FORBIDDEN.some(([x, y]) => x === a && y === b)) out.push({ ...e, rule: `${a} → ${b}` });
    else if (ISOLATED.includes(a)) out.push({ ...e, rule: `${a} imports nothing outside itself` });
  }
  return out;
}

/** Folder → folder edges with how many file imports make each. */
export function folderEdges(graph) {
  const counts = new Map();
  for (const e of graph.edges) {
    const a = folderOf(e.from);
    const b = folderOf(e.to);
    if (a !== b) counts.set(`${a} → ${b}`, (counts.get(`${a} → ${b}`) ?? 0) + 1);
  }
  return [...counts].sort(([x], [y]) => (x < y ? -1 : 1));
}

function main(argv) {
  const rootFlag = argv.indexOf('--root');
  const root = resolve(rootFlag >= 0 ? argv[rootFlag + 1] : join(dirname(fileURLToPath(import.meta.url)), '..', 'src'));
  const graph = importGraph(root);
  if (argv.includes('--graph')) for (const [edge, n] of folderEdges(graph)) console.log(`${edge} (${n})`);
  const bad = forbiddenEdges(graph);
  const fileCycles = cycles(graph);
  for (const e of bad) console.log(`forbidden ${e.rule}: ${e.from} imports ${e.to}${e.kind === 'value' ? '' : ` (${e.kind})`}`);
  for (const loop of fileCycles) console.log(`cycle: ${loop.join(' → ')}`);
  for (const group of folderCycles(graph)) console.log(`note: these folders import each other round: ${group.join(', ')}`);
  console.log(`${graph.files.length} files, ${graph.edges.length} imports: ${bad.length} forbidden, ${fileCycles.length} cycles`);
  return bad.length > 0 || fileCycles.length > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
