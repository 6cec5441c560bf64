// Loaded into a worker process with `node --import <this file>`: counts the Redis commands the process sends
// and its round trips, by wrapping ioredis's sendCommand (the one door every command goes through: BullMQ's,
// the ledger's, the pacer's). A command sent on its own is one round trip; the commands of one pipeline (or
// MULTI/EXEC) share one, since ioredis hands them to sendCommand with the same `{isPipeline: true}` stream
// object. EVALSHA is counted per script (by SHA, which the benchmark maps back to script names).
//
// $BENCH_REDIS_PROBE_OUT gets one JSON line per snapshot: on SIGUSR2 (the benchmark sends one when the first
// outcome is in and one when the run is complete, so start-up and idle polling stay out of the per-row
// figure) and on exit. Nothing in src/ changes.
import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { Redis } from 'ioredis';

const out = process.env.BENCH_REDIS_PROBE_OUT;
if (out) {
  const counts = { commands: 0, roundTrips: 0, pipelines: 0, byCommand: {}, scripts: {}, evalTexts: {} };
  const seenPipelines = new WeakSet();
  const wrap = (proto) => {
    const original = proto.sendCommand;
    if (typeof original !== 'function' || original.__benchProbe) return;
    const wrapped = function (command, stream) {
      counts.commands++;
      const name = command?.name ?? '?';
      counts.byCommand[name] = (counts.byCommand[name] ?? 0) + 1;
      if (name === 'evalsha' || name === 'eval') {
        // EVAL with the script's text (sent on every call, not by SHA) is told apart as `eval:<sha>`, with the
        // text's first line kept once so the benchmark can say which script it is.
        const first = command.args?.[0];
        let key = '?';
        if (typeof first === 'string' || Buffer.isBuffer(first)) {
          if (name === 'evalsha') key = String(first).slice(0, 12);
          else {
            const sha = createHash('sha1').update(first).digest('hex').slice(0, 12);
            key = `eval:${sha}`;
            counts.evalTexts[sha] ??= String(first).trim().split('\n')[0].slice(0, 80);
          }
        }
        counts.scripts[key] = (counts.scripts[key] ?? 0) + 1;
      }
      if (stream && typeof stream === 'object' && stream.isPipeline) {
        if (!seenPipelines.has(stream)) {
          seenPipelines.add(stream);
          counts.roundTrips++;
          counts.pipelines++;
        }
      } else {
        counts.roundTrips++;
      }
      return original.apply(this, arguments);
    };
    wrapped.__benchProbe = true;
    proto.sendCommand = wrapped;
  };
  // Only the node connection: a Cluster hands each command on to a node's Redis.sendCommand, so wrapping
  // Cluster too would count it twice.
  wrap(Redis.prototype);

  const snapshot = (label) => {
    try {
      appendFileSync(out, `${JSON.stringify({ label, at: Date.now(), ...counts })}\n`);
    } catch {
      // the benchmark reports the probe as missing
    }
  };
  let n = 0;
  process.on('SIGUSR2', () => snapshot(`mark${++n}`));
  process.on('exit', () => snapshot('exit'));
}
