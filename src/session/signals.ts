// The process's stop policy: SIGINT/SIGTERM ask for a clean stop once (requests in flight finish, the report is
// written, exit code 4); a second signal exits at once.
import { EXIT } from '../exitCodes.js';

export interface ProcessStop {
  /** aborted at the first signal */
  signal: AbortSignal;
  /** resolves with the first signal's name */
  stopped: Promise<NodeJS.Signals>;
  /** removes the handlers */
  dispose(): void;
}

export function stopOnSignals(opts: { stream?: NodeJS.WritableStream; exit?: (code: number) => void } = {}): ProcessStop {
  const stream = opts.stream ?? process.stderr;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const controller = new AbortController();
  let resolve: (sig: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const handler = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      exit(EXIT.INCOMPLETE);
      return;
    }
    stream.write(`\n${sig}: finishing requests in flight (send again to quit at once)\n`);
    controller.abort();
    resolve(sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    stopped,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
