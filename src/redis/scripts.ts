// Every Lua script of the tool lives in its own file under ./scripts/, named `<name>-<numberOfKeys>.lua`
// (bullmq's convention). Each becomes an ioredis custom command `<name>` on a connection: ioredis sends
// EVALSHA, and the script text only when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH), so no call
// sends Lua text in the normal case. The build copies the .lua files next to the compiled module
// (scripts/copy-assets.mjs), and they are found relative to this file, in src/ (vitest) and dist/ (node) alike.
import { readdirSync, readFileSync } from 'node:fs';
import type { RedisClient } from './connection.js';

export interface ScriptFile {
  /** command name: the file name before `-<numberOfKeys>.lua` */
  name: string;
  numberOfKeys: number;
  lua: string;
  file: string;
}

const SCRIPTS_DIR = new URL('./scripts/', import.meta.url);
const FILE_NAME = /^([A-Za-z][A-Za-z0-9]*)-(\d+)\.lua$/;

// The files never change while the process runs: read them once, on first use.
let files: ReadonlyMap<string, ScriptFile> | undefined;
// Connections that have the commands defined; weak, so a closed connection is not kept alive by it.
const loaded = new WeakSet<object>();

/** Every script of the folder, by command name. */
export function scriptFiles(): ReadonlyMap<string, ScriptFile> {
  if (!files) {
    const found = new Map<string, ScriptFile>();
    for (const file of readdirSync(SCRIPTS_DIR).sort()) {
      if (!file.endsWith('.lua')) continue;
      const m = FILE_NAME.exec(file);
      if (!m) throw new Error(`Redis script ${file}: name it <name>-<numberOfKeys>.lua`);
      const name = m[1] as string;
      if (found.has(name)) throw new Error(`Redis script ${file}: another script is already named ${name}`);
      found.set(name, { name, numberOfKeys: Number(m[2]), lua: readFileSync(new URL(file, SCRIPTS_DIR), 'utf8'), file });
    }
    files = found;
  }
  return files;
}

/** Defines every script as a custom command of this connection. Idempotent; call where connections are opened. */
export function loadScripts(redis: RedisClient): void {
  if (loaded.has(redis)) return;
  for (const script of scriptFiles().values()) {
    // A name that shadows an ioredis method or another library's command (bullmq defines its own) would
    // silently replace it: refuse instead.
    if (script.name in redis) throw new Error(`Redis script ${script.file}: "${script.name}" is already a method of the connection; rename the file`);
    redis.defineCommand(script.name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
  loaded.add(redis);
}

type ScriptCommand = (...keysAndArgs: (string | number)[]) => Promise<unknown>;

/** Runs script `name` (by SHA) with its keys and arguments, loading the scripts onto the connection first if needed. */
export async function callScript<T = unknown>(redis: RedisClient, name: string, keys: string[], args: (string | number)[]): Promise<T> {
  loadScripts(redis);
  const script = scriptFiles().get(name);
  if (!script) throw new Error(`no Redis script named ${name} in src/redis/scripts/`);
  if (keys.length !== script.numberOfKeys) throw new Error(`Redis script ${script.file} takes ${script.numberOfKeys} keys, got ${keys.length}`);
  const command = (redis as unknown as Record<string, ScriptCommand>)[name] as ScriptCommand;
  return (await command.call(redis, ...keys, ...args)) as T;
}
