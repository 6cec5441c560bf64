// Every Lua script of the tool lives in its own file under ./scripts/, named `<name>-<numberOfKeys>.lua`
// (bullmq's convention). Each becomes an ioredis custom command `<name>` on a connection: ioredis sends
// EVALSHA, and the script text only when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH), so no call
// sends Lua text in the normal case. The build copies the .lua files next to the compiled module
// (scripts/copy-assets.mjs), and they are found relative to this file, in src/ (vitest) and dist/ (node) alike.
// Code several scripts share lives in ./scripts/includes/<name>.lua and is pasted in where a script says
// `--- @include "<name>"` (bullmq's convention too): Redis runs one self-contained text per script.
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
const INCLUDES_DIR = new URL('./scripts/includes/', import.meta.url);
const FILE_NAME = /^([A-Za-z][A-Za-z0-9]*)-(\d+)\.lua$/;
const INCLUDE = /^--- @include "([A-Za-z][A-Za-z0-9]*)"$/gm;

/** The script text with its includes pasted in (each once, the first time it is named). */
function withIncludes(lua: string, file: string, done = new Set<string>()): string {
  return lua.replace(INCLUDE, (_line, name: string) => {
    if (done.has(name)) return `-- (${name} included above)`;
    done.add(name);
    let text: string;
    try {
      text = readFileSync(new URL(`${name}.lua`, INCLUDES_DIR), 'utf8');
    } catch {
      throw new Error(`Redis script ${file}: no include named ${name} in scripts/includes/`);
    }
    return withIncludes(text, file, done);
  });
}

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
      found.set(name, { name, numberOfKeys: Number(m[2]), lua: withIncludes(readFileSync(new URL(file, SCRIPTS_DIR), 'utf8'), file), file });
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

type ScriptCommand = (...keysAndArgs: (string | number | Buffer)[]) => Promise<unknown>;

/** The connection's command for script `name` (ioredis defines `<name>Buffer` beside each, which answers in Buffers). */
function command(redis: RedisClient, name: string, keys: string[], buffers: boolean): ScriptCommand {
  loadScripts(redis);
  const script = scriptFiles().get(name);
  if (!script) throw new Error(`no Redis script named ${name} in src/redis/scripts/`);
  if (keys.length !== script.numberOfKeys) throw new Error(`Redis script ${script.file} takes ${script.numberOfKeys} keys, got ${keys.length}`);
  return (redis as unknown as Record<string, ScriptCommand>)[buffers ? `${name}Buffer` : name] as ScriptCommand;
}

/** Runs script `name` (by SHA) with its keys and arguments, loading the scripts onto the connection first if needed. */
export async function callScript<T = unknown>(redis: RedisClient, name: string, keys: string[], args: (string | number)[]): Promise<T> {
  return (await command(redis, name, keys, false).call(redis, ...keys, ...args)) as T;
}

/**
 * callScript for scripts that take or return binary strings: arguments may be Buffers (sent as they are), and
 * bulk replies come back as Buffers, never decoded as UTF-8 (which would corrupt them).
 */
export async function callScriptBuffer<T = unknown>(redis: RedisClient, name: string, keys: string[], args: (string | number | Buffer)[]): Promise<T> {
  return (await command(redis, name, keys, true).call(redis, ...keys, ...args)) as T;
}
