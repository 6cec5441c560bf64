// Copies the files tsc does not emit into dist/: the Redis Lua scripts, which src/redis/scripts.ts reads
// relative to its own location (src/redis/scripts/*.lua → dist/redis/scripts/*.lua, includes/ with them).
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';

const from = new URL('../src/redis/scripts/', import.meta.url);
const to = new URL('../dist/redis/scripts/', import.meta.url);

// Start empty, so a script renamed or deleted in src/ does not linger in dist/ as a second command.
rmSync(to, { recursive: true, force: true });
mkdirSync(to, { recursive: true });
for (const file of readdirSync(from)) if (file.endsWith('.lua')) cpSync(new URL(file, from), new URL(file, to));
// …and the fragments they include (src/redis/scripts/includes/*.lua).
cpSync(new URL('includes/', from), new URL('includes/', to), { recursive: true });
