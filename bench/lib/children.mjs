// Child processes of the benchmark. Every one is tracked so that it is stopped on every way out (normal end,
// error, Ctrl-C, process.exit). Children get their own process group, so a Ctrl-C in the terminal reaches only
// the benchmark, which then stops them in order (workers first, so nothing writes to Redis while it is cleaned).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CLI, DIST, ROOT, childEnv, sleep } from './util.mjs';

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();
/** Every command line started, for the results file. */
export const commandLog = [];

const MAX_LINES = 50_000;

/**
 * Spawns `node [nodeArgs] script args`. Returns the ChildProcess with `exited` (promise of {code, signal}),
 * `stdoutText()`, `stderrLines` (kept, up to MAX_LINES) and `spawnedAt` (Date.now()).
 */
export function spawnNode(script, args, { env = {}, nodeArgs = [], name = script, show } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
    cwd: ROOT,
    env: childEnv({ BENCH_DIST: DIST, ...env }),
    detached: process.platform !== 'win32',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Shown as typed from the repository root (the private copy of dist/ is shown as dist/).
  const rel = (path) => relative(ROOT, path.startsWith(DIST) ? join(ROOT, 'dist', path.slice(DIST.length)) : path);
  const shown = show ?? `node ${[...nodeArgs.map((a) => (a.startsWith('file:') ? rel(new URL(a).pathname) : a)), rel(script), ...args].join(' ')}`;
  const envShown = Object.entries(env)
    .filter(([k]) => !k.startsWith('BENCH_'))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  commandLog.push(`${envShown ? `${envShown} ` : ''}${shown}`);
  child.name = name;
  child.spawnedAt = Date.now();
  children.add(child);
  let out = '';
  const lines = [];
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    out += d;
    child.emit('stdout-text', out);
  });
  child.stderr.on('data', (d) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) if (lines.length < MAX_LINES) lines.push(l);
  });
  child.stdoutText = () => out;
  child.stderrLines = lines;
  child.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      child.exitedAt = Date.now();
      resolve({ code, signal });
    });
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
  void child.exited.then(() => children.delete(child));
  return child;
}

/** Spawns `node dist/cli.js …`. */
export function spawnCli(args, opts = {}) {
  return spawnNode(CLI, args, { name: `rc-migrate ${args[0]}`, ...opts });
}

export const alive = (child) => child.exitCode === null && child.signalCode === null && children.has(child);

/** Sends `signal`, then SIGKILL after `graceMs`; resolves with the exit once the process is gone. */
export async function stopChild(child, { signal = 'SIGTERM', graceMs = 15_000 } = {}) {
  if (!alive(child)) return child.exited;
  try {
    child.kill(signal);
  } catch {
    // already gone
  }
  const gone = await Promise.race([child.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!gone) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  return child.exited;
}

/** Stops every child still running: SIGTERM to all, SIGKILL after a grace period. */
export async function stopAllChildren(graceMs = 8000) {
  await Promise.all([...children].map((c) => stopChild(c, { graceMs })));
}

// Last resort: nothing may outlive the benchmark.
process.on('exit', () => {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Waits for a line on the child's stdout that matches `re`; returns the match. */
export function waitForStdout(child, re, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const check = (text) => {
      const m = re.exec(text);
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = ({ code, signal }) => {
      cleanup();
      reject(new Error(`${child.name} exited (code ${code}, signal ${signal}) before printing ${re}: ${child.stderrLines.slice(-5).join(' | ')}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${child.name} did not print ${re} within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.off('stdout-text', check);
    };
    child.on('stdout-text', check);
    void child.exited.then(onExit);
    check(child.stdoutText());
  });
}

/** Starts `rc-migrate sandbox --port 0 …` and returns its URL and helpers for its admin endpoints. */
export async function startSandboxChild(flags) {
  const child = spawnCli(['sandbox', '--port', '0', ...flags], { env: { LOG_LEVEL: 'warn' } });
  return sandboxHandle(child);
}

/**
 * Starts the sandbox through its library API in a child process (lib/sandbox-child.mjs), with any knobs
 * (`{unlimited: true}`, …), whatever flags this build's CLI has. `heapMb` raises the child's V8 heap limit: the
 * sandbox keeps every (user, token) pair it saw, which for a million rows with App Store receipts is gigabytes.
 */
export async function startSandboxLibrary(options, { heapMb } = {}) {
  const child = spawnNode(join(ROOT, 'bench', 'lib', 'sandbox-child.mjs'), [], {
    name: 'sandbox',
    env: { BENCH_SANDBOX_OPTIONS: JSON.stringify(options) },
    nodeArgs: heapMb ? [`--max-old-space-size=${heapMb}`] : [],
    show: `node bench/lib/sandbox-child.mjs   (startSandbox(${JSON.stringify(options)}) from dist/sandbox/index.js)`,
  });
  return sandboxHandle(child);
}

async function sandboxHandle(child) {
  const m = await waitForStdout(child, /listening on (http:\/\/\S+)/);
  const url = m[1];
  return {
    child,
    url,
    async stats() {
      const res = await fetch(`${url}/_sandbox/stats`);
      return res.json();
    },
    async reset() {
      const res = await fetch(`${url}/_sandbox/reset`, { method: 'POST' });
      await res.arrayBuffer();
    },
    stop: () => stopChild(child, { signal: 'SIGTERM', graceMs: 5000 }),
  };
}

/** Reads VmRSS / VmHWM (bytes) of a live process; undefined once it is gone. */
export function procMemory(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a live process has used; undefined once it is gone. */
export function procCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15; clock ticks are 100/s on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * Polls a process's memory every `intervalMs` until stopped: the largest VmRSS seen and the last VmHWM read
 * (the kernel's own peak, read as late as possible before the process exits).
 */
export function watchProcess(pid, intervalMs = 100) {
  let peakRss = 0;
  let lastHwm;
  let lastCpu;
  let samples = 0;
  const sample = () => {
    const m = procMemory(pid);
    if (!m) return;
    samples++;
    if (m.rss !== undefined && m.rss > peakRss) peakRss = m.rss;
    if (m.hwm !== undefined) lastHwm = m.hwm;
    const cpu = procCpuSeconds(pid);
    if (cpu !== undefined) lastCpu = cpu;
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    sample,
    stop() {
      clearInterval(timer);
      return { peakRss, hwm: lastHwm, cpuSeconds: lastCpu, samples };
    },
  };
}
