// The survey pass's second thread. Reading a receipt and keeping what the survey needs of it (surveyBook.ts) took
// as long as reading the sources, checking each row and hashing its token, and the pass did one after the other
// while a second core stood idle: nothing else runs during the pass (no Redis work, no sending). Here the pass
// reads, checks and hashes, and hands its App Store rows in batches to a worker thread that reads and keeps them;
// at the end the worker gives back what it kept (plain arrays, moved). Measured in bench/README.md
// (ingestReceipts), on 2 shared vCPUs: what the survey adds to a plan's time halved when the second core was free,
// unchanged when it was not; about 40 MiB of RSS.
//
// The worker is dist/ingest/surveyWorker.js, compiled beside this file. Run from the TypeScript sources (the
// tests), there is no such file: the pass keeps its rows in its own thread (surveyBook.ts), which gives the same
// results; a test runs the worker of the build against it (test/surveyThread.test.ts).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { keptFromState, SurveyBook, type AppleRowRules, type SurveyEntry, type SurveyKept, type SurveyKeptState } from './surveyBook.js';

/** What the worker is started with. */
export interface SurveyWorkerData {
  rules: AppleRowRules;
  /** the pass's clock when it began (epoch ms) */
  now: number;
}

/** A batch of rows, column by column (one message, few objects to clone). */
export interface SurveyBatch {
  kind: 'rows';
  sources: number[];
  lines: number[];
  users: string[];
  tokens: string[];
  /** the rows' token fingerprints, end to end */
  keys: Uint8Array;
}

export type SurveyWorkerReply = { kind: 'ack' } | { kind: 'kept'; kept: SurveyKeptState };

/** Rows per batch, and batches handed over but not yet kept: the pass waits beyond that (bounded memory). */
const BATCH_ROWS = 200;
const BATCHES_IN_FLIGHT = 3;

/** The compiled worker beside this module, when there is one and a second core to run it. */
export function surveyWorkerFile(): URL | undefined {
  const url = new URL('./surveyWorker.js', import.meta.url);
  return availableParallelism() > 1 && existsSync(fileURLToPath(url)) ? url : undefined;
}

/** Where the survey pass keeps its rows: a SurveyBook in its own thread or in a worker. */
export interface SurveyKeeper {
  /** Takes a row; when it returns a promise, the pass waits for it before the next row. */
  add(entry: SurveyEntry): Promise<void> | undefined;
  /** Every row is in: what was kept. */
  finish(): Promise<SurveyKept>;
  /** Releases the worker, if any (after finish, or when the pass stops early). */
  close(): Promise<void>;
}

/** The book in the pass's own thread. */
export function bookKeeper(rules: AppleRowRules, now: () => number): SurveyKeeper {
  const book = new SurveyBook(rules, now);
  return {
    add: (entry) => {
      book.add(entry);
      return undefined;
    },
    finish: () => Promise.resolve(book.finish()),
    close: () => Promise.resolve(),
  };
}

/** The book in a worker thread started from `file` (surveyWorkerFile) with the first row: none for a run without one. */
export function threadKeeper(file: URL, data: SurveyWorkerData): SurveyKeeper {
  let started: Worker | undefined;
  let failure: Error | undefined;
  let inFlight = 0;
  let batch = emptyBatch();
  const waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  let finished: { resolve: (kept: SurveyKeptState) => void; reject: (err: Error) => void } | undefined;
  const fail = (err: Error): void => {
    failure ??= err;
    for (const w of waiting.splice(0)) w.reject(failure);
    finished?.reject(failure);
  };
  const worker = (): Worker => {
    if (started) return started;
    const w = new Worker(file, { workerData: data });
    w.on('message', (reply: SurveyWorkerReply) => {
      if (reply.kind === 'ack') {
        inFlight--;
        waiting.shift()?.resolve();
      } else finished?.resolve(reply.kept);
    });
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`the survey's worker thread stopped (exit code ${code})`)));
    started = w;
    return w;
  };

  /** Waits until the worker has room for one more batch. */
  const room = async (): Promise<void> => {
    while (inFlight >= BATCHES_IN_FLIGHT) {
      if (failure) throw failure;
      await new Promise<void>((resolve, reject) => waiting.push({ resolve, reject }));
    }
    if (failure) throw failure;
  };
  const send = async (): Promise<void> => {
    if (batch.tokens.length === 0) return;
    await room();
    const { keys, ...rest } = batch;
    batch = emptyBatch();
    inFlight++;
    const message: SurveyBatch = { ...rest, keys: Buffer.concat(keys) };
    worker().postMessage(message);
  };

  return {
    add: (entry) => {
      if (failure) return Promise.reject(failure);
      // started with the first row: its start (loading its modules) overlaps the filling of the first batch
      worker();
      batch.sources.push(entry.place.source);
      batch.lines.push(entry.place.line);
      batch.users.push(entry.appUserId);
      batch.tokens.push(entry.token);
      batch.keys.push(entry.key);
      return batch.tokens.length >= BATCH_ROWS ? send() : undefined;
    },
    finish: async () => {
      // no App Store row: nothing was started, nothing to keep
      if (!started) return new SurveyBook(data.rules, () => data.now).finish();
      await send();
      if (failure) throw failure;
      // the worker takes its messages in order: this one after every batch
      const kept = new Promise<SurveyKeptState>((resolve, reject) => (finished = { resolve, reject }));
      started.postMessage({ kind: 'finish' });
      return keptFromState(await kept);
    },
    close: async () => {
      if (!started) return;
      started.removeAllListeners('exit');
      await started.terminate();
    },
  };
}

function emptyBatch(): Omit<SurveyBatch, 'keys'> & { keys: Uint8Array[] } {
  return { kind: 'rows', sources: [], lines: [], users: [], tokens: [], keys: [] };
}
