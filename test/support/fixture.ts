// The common frame of a pipeline test file: a sandbox of its own, a temp directory and a Redis key prefix,
// all released after the file's tests.
import { afterAll, beforeAll } from 'vitest';
import { rm } from 'node:fs/promises';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index.js';
import { dropPrefix, uniquePrefix } from './redis.js';
import { tempDir } from './harness.js';

export interface PipelineFixture {
  /** the file's sandbox (set before its tests run) */
  sandbox: Sandbox;
  /** a temp directory for inputs and reports */
  dir: string;
  /** a Redis key prefix of its own */
  prefix: string;
  /** more prefixes, each dropped after the tests */
  newPrefix(name: string): string;
}

export function pipelineFixture(name: string, sandboxOptions: SandboxOptions = {}): PipelineFixture {
  const prefixes: string[] = [];
  const newPrefix = (n: string): string => {
    const p = uniquePrefix(n);
    prefixes.push(p);
    return p;
  };
  const fx = { prefix: newPrefix(name), dir: '', newPrefix } as PipelineFixture;
  beforeAll(async () => {
    fx.sandbox = await startSandbox(sandboxOptions);
    fx.dir = await tempDir(name);
  });
  afterAll(async () => {
    await fx.sandbox?.close();
    for (const p of prefixes) await dropPrefix(p);
    if (fx.dir) await rm(fx.dir, { recursive: true, force: true });
  });
  return fx;
}
