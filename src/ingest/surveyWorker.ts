// The survey pass's worker (surveyThread.ts): a SurveyBook fed batches of App Store rows by the pass, which goes on
// reading the sources meanwhile; once they are read, the book's results go back to it.
import { parentPort, workerData } from 'node:worker_threads';
import { keptState, SurveyBook } from './surveyBook.js';
import type { SurveyBatch, SurveyWorkerData, SurveyWorkerReply } from './surveyThread.js';

const port = parentPort;
if (!port) throw new Error('surveyWorker.js runs as a worker thread of the survey pass (surveyThread.ts)');
const data = workerData as SurveyWorkerData;
// the pass's clock as it stood when the pass began: a subscription active then is active for the whole pass
const book = new SurveyBook(data.rules, () => data.now);
const reply = (message: SurveyWorkerReply): void => port.postMessage(message);

port.on('message', (message: SurveyBatch | { kind: 'finish' }) => {
  if (message.kind === 'finish') {
    const kept = keptState(book.finish());
    // the facts' arrays move to the pass rather than being copied: a million rows' are some 40 MB, and this
    // thread ends here
    const { places, checks, codes, firstId, ids, until, keys } = kept.facts;
    port.postMessage(
      { kind: 'kept', kept } satisfies SurveyWorkerReply,
      [places, checks, codes, firstId, ids, until, keys].map((a) => a.buffer as ArrayBuffer),
    );
    return;
  }
  const { sources, lines, users, tokens, keys } = message;
  const width = keys.length / tokens.length;
  for (let i = 0; i < tokens.length; i++) {
    book.add({
      place: { source: sources[i] as number, line: lines[i] as number },
      appUserId: users[i] as string,
      token: tokens[i] as string,
      key: keys.subarray(i * width, (i + 1) * width),
    });
  }
  reply({ kind: 'ack' });
});
