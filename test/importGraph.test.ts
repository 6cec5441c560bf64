// The dependency rules of src/ (scripts/import-graph.mjs): first that the checker finds what it must find in a
// small made-up tree, then that src/ itself keeps them. Needs no Redis and no network.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SCRIPT = join(import.meta.dirname, '..', 'scripts', 'import-graph.mjs');

function check(root?: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...(root ? ['--root', root] : [])], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

async function tree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

describe('import-graph', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rcm-imports-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds forbidden edges of every import form, sandbox escapes and file cycles', async () => {
    const root = join(dir, 'bad');
    await tree(root, {
      'types.ts': 'export type T = number;\n',
      'reports/summary.ts': 'export const s = 1;\n',
      'reports/html.ts': 'export const h = 1;\n',
      'reports/data.ts': 'export type D = string;\n',
      'metrics/metrics.ts': 'export class M {}\n',
      'workers/worker.ts': "import type { M } from '../metrics/metrics.js';\nexport type W = M;\n",
      'workers/processor.ts': "import { s } from '../reports/summary.js';\nexport const p = s;\n",
      'workers/lazy.ts': "export const l = () => import('../reports/html.js');\n",
      'revenuecat/client.ts': "import type { D } from '../reports/data.js';\nexport type C = D;\n",
      'ingest/ingester.ts': "import { h } from '../reports/html.js';\nexport const i = h;\n",
      'ledger/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'ledger/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
      'sandbox/app.ts': "import type { T } from '../types.js';\nimport { z } from 'zod';\nexport type A = T;\nexport const zz = z;\n",
    });
    const { status, out } = check(root);
    expect(status).toBe(1);
    expect(out).toContain('forbidden workers → reports: workers/processor.ts imports reports/summary.ts');
    expect(out).toContain('forbidden workers → reports: workers/lazy.ts imports reports/html.ts (dynamic)');
    expect(out).toContain('forbidden revenuecat → reports: revenuecat/client.ts imports reports/data.ts (type)');
    expect(out).toContain('forbidden ingest → reports: ingest/ingester.ts imports reports/html.ts');
    expect(out).toContain('forbidden workers → metrics: workers/worker.ts imports metrics/metrics.ts (type)');
    expect(out).toContain('forbidden sandbox imports nothing outside itself: sandbox/app.ts imports types.ts (type)');
    expect(out).not.toContain('zod');
    expect(out).toContain('cycle: ledger/a.ts → ledger/b.ts → ledger/a.ts');
    expect(out).toMatch(/6 forbidden, 1 cycles/);
  });

  it('passes a tree that keeps the rules (allowed edges, no loop)', async () => {
    const root = join(dir, 'good');
    await tree(root, {
      'types.ts': 'export type T = number;\n',
      'state/summary.ts': "import type { T } from '../types.js';\nexport const s = (t: T) => t;\n",
      'workers/processor.ts': "import { s } from '../state/summary.js';\nexport const p = s;\n",
      'reports/html.ts': "import { s } from '../state/summary.js';\nexport const h = s;\n",
      'sandbox/app.ts': "import { v } from './view.js';\nexport const a = v;\n",
      'sandbox/view.ts': 'export const v = 1;\n',
    });
    const { status, out } = check(root);
    expect(out).toMatch(/6 files, 4 imports: 0 forbidden, 0 cycles/);
    expect(status).toBe(0);
  });

  it('src/ has no import cycle and none of the forbidden edges of issues 10 and 16', () => {
    const { status, out } = check();
    expect(out).toMatch(/ 0 forbidden, 0 cycles/);
    expect(status).toBe(0);
  });
});
