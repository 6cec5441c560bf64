// Child process of the benchmark: the RevenueCat sandbox started through its library API (startSandbox from
// dist/sandbox/index.js) with the knobs in $BENCH_SANDBOX_OPTIONS (JSON), so that every knob is available
// (e.g. `unlimited`) whether or not this build's `rc-migrate sandbox` has a flag for it. It runs in its own
// process, like `rc-migrate sandbox`, so its CPU is not the benchmark's. Prints the same "listening on" line
// and closes on SIGTERM / SIGINT.
import { fileURLToPath, pathToFileURL } from 'node:url';

const DIST = process.env.BENCH_DIST ?? fileURLToPath(new URL('../../dist', import.meta.url));
const { startSandbox } = await import(pathToFileURL(`${DIST}/sandbox/index.js`).href);

const options = JSON.parse(process.env.BENCH_SANDBOX_OPTIONS ?? '{}');
const sandbox = await startSandbox({ port: 0, ...options });
process.stdout.write(`RevenueCat sandbox listening on ${sandbox.url} (stats: ${sandbox.url}/_sandbox/stats)\n`);

let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  sandbox.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
