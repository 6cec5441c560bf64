// BullMQ's Worker, with a way out of a close that cannot finish. BullMQ 6's close(true) does not force a close
// already under way: it returns that close, which waits for the jobs in hand and then for the blocking connection
// (the one that waits for jobs with BZPOPMIN) to end. A blocking connection that is waiting to reconnect (Redis
// restarted, the network dropped it) never ends once told to disconnect, since ioredis then cancels the
// reconnection and has no socket left to close: the close waited forever and so did the process.
import { Worker } from 'bullmq';
import { endsWithin } from '../deadline.js';

/** How long giving up may itself wait for the blocking connection's client (it is ready long before a close). */
const CUT_WITHIN_MS = 1000;

export class JobWorker<DataType, ResultType, NameType extends string> extends Worker<DataType, ResultType, NameType> {
  /**
   * After a close that did not finish in time: stops what would otherwise go on behind it (the renewal of the
   * locks of the jobs in hand, the stalled-job check, fetching jobs) and drops the blocking connection without
   * waiting for it. The jobs in hand are left to their locks, which lapse: another worker takes them up as stalled.
   * Returns the state the blocking connection was in ('reconnecting' is the one a close cannot get past).
   */
  async abandon(): Promise<string | undefined> {
    let state: string | undefined;
    const blocking = this.backend.blockingConnection;
    const cut = Promise.all([
      this.lockManager.close(),
      this.pause(true),
      blocking?.client.then((client) => {
        state = client.status;
        client.disconnect();
      }),
    ]);
    await endsWithin(cut, CUT_WITHIN_MS);
    return state;
  }
}
