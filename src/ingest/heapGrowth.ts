// The V8 heap setting of a process that only ingests (`rc-migrate ingest`). What it holds live is small and flat,
// about 20 MB (the modules, and the two chunks of rows in hand), but every row's cells and job stay alive across
// a round trip to Redis, long enough for V8 to move them to its old space, where they die. On a machine with
// plenty of memory V8 lets the old space grow to four times what was live before it collects it again, so a
// 20 MB process reached 180-250 MB of RSS on App Store receipts. A growth of 1 + GROWTH_PERCENT/100 instead
// collects the old space more often (each collection is cheap: little is live) and keeps the ingester near 130 MB
// on the same file, at a few % more CPU.
//
// Only the process's own entry point may call this (the CLI's `ingest` command): it is a setting of the whole
// process, and a library caller, or `rc-migrate run` with its workers in the same process, keeps V8's own.
import { setFlagsFromString } from 'node:v8';

const GROWTH_PERCENT = 50;

/** Limits the old space's growth between collections to GROWTH_PERCENT % of what was live after the last one. */
export function limitHeapGrowthForIngest(): void {
  // A flag V8 reads at each collection, so setting it once the process runs takes effect (unlike the heap sizes,
  // which V8 fixes at start-up).
  setFlagsFromString(`--heap-growing-percent=${GROWTH_PERCENT}`);
}
