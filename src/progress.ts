// A progress bar for a person at a terminal (on stderr, so stdout stays the command's answer). Off a
// terminal the commands log a progress line every few seconds instead.
import cliProgress from 'cli-progress';
import { briefRate } from './session/rateProgress.js';
import type { RunState } from './types.js';
import type { RateView } from './workers/rate/sharedRate.js';

/** What the bar shows: the run's counters (a RunState, or a Summary at the end), and the learned rate when known. */
export type ProgressCounts = Pick<RunState, 'rows_read' | 'rows_queued' | 'requests_sent' | 'rows_succeeded' | 'rows_failed' | 'rows_rejected' | 'rows_held'> & {
  rates?: readonly RateView[];
};

export interface ProgressDisplay {
  onState(state: ProgressCounts): void;
  /** Writes a line above the bar (the bar is redrawn below it); before the bar starts, straight to the stream. */
  log(text: string): void;
  stop(): void;
}

export function runProgressBar(stream: NodeJS.WriteStream = process.stderr): ProgressDisplay {
  // A MultiBar of one bar: it can print log lines above the bar, which a SingleBar cannot.
  const bars = new cliProgress.MultiBar(
    {
      stream,
      format: '{bar} {percentage}% | read {read} · sent {requests} · ok {succeeded} · failed {failed} · rejected {rejected}{held} | {rate} rows/s{learned} | ETA {eta_formatted}',
      barsize: 24,
      hideCursor: true,
      etaBuffer: 30,
      fps: 4,
    },
    cliProgress.Presets.shades_classic,
  );
  let bar: cliProgress.SingleBar | undefined;
  let last: { at: number; finished: number } | undefined;
  let rate = 0;
  // the learned request rate as last read (the report's counts at the end carry none: the last one stays)
  let learned = '';
  return {
    onState(s) {
      const finished = s.rows_succeeded + s.rows_failed;
      const now = Date.now();
      if (last && now > last.at) rate = rate * 0.7 + (((finished - last.finished) * 1000) / (now - last.at)) * 0.3;
      last = { at: now, finished };
      const brief = briefRate(s.rates);
      if (brief) learned = ` · rate ${brief}`;
      const payload = {
        read: s.rows_read,
        requests: s.requests_sent,
        succeeded: s.rows_succeeded,
        failed: s.rows_failed,
        rejected: s.rows_rejected,
        // held conflicts: rows that are not sent until someone looks at them
        held: s.rows_held > 0 ? ` · held ${s.rows_held}` : '',
        rate: rate.toFixed(1),
        learned,
      };
      if (!bar) bar = bars.create(Math.max(1, s.rows_queued), finished, payload);
      else {
        bar.setTotal(Math.max(1, s.rows_queued));
        bar.update(finished, payload);
      }
    },
    log(text) {
      const line = text.endsWith('\n') ? text : `${text}\n`;
      if (bar) bars.log(line);
      else stream.write(line);
    },
    stop() {
      if (!bar) return;
      // The MultiBar writes its log buffer only when it redraws: draw once more so no line is lost.
      bars.update();
      bars.stop();
      bar = undefined;
    },
  };
}

export interface IngestProgressLine {
  onProgress(p: { source: string; line: number; rowsRead: number }): void;
  /** Writes a line above the progress line; before it starts, straight to the stream. */
  log(text: string): void;
  stop(): void;
}

/** For `ingest` and `plan`: rows read so far and where, with the pace (the total of a stream is not known ahead). */
export function ingestProgressLine(stream: NodeJS.WriteStream = process.stderr): IngestProgressLine {
  const bars = new cliProgress.MultiBar({ stream, format: 'read {value} rows | {source}:{line} | {rate} rows/s', hideCursor: true, fps: 4 });
  const started = Date.now();
  let bar: cliProgress.SingleBar | undefined;
  return {
    onProgress(p) {
      const rate = ((p.rowsRead * 1000) / Math.max(1, Date.now() - started)).toFixed(0);
      if (!bar) bar = bars.create(0, p.rowsRead, { source: p.source, line: p.line, rate });
      else bar.update(p.rowsRead, { source: p.source, line: p.line, rate });
    },
    log(text) {
      const line = text.endsWith('\n') ? text : `${text}\n`;
      if (bar) bars.log(line);
      else stream.write(line);
    },
    stop() {
      if (!bar) return;
      bars.update();
      bars.stop();
      bar = undefined;
    },
  };
}
