// A progress bar for a person at a terminal (on stderr, so stdout stays the command's answer). Off a
// terminal the commands log a progress line every few seconds instead.
import cliProgress from 'cli-progress';
import { briefRate } from './session/rateProgress.js';
import type { RunState } from './types.js';
import type { RateView } from './workers/rate/sharedRate.js';

/** What the bar shows: the run's counters (a RunState, or a Summary at the end), and the learned rate when known. */
export type ProgressCounts = Pick<RunState, 'rows_read' | 'rows_queued' | 'requests_sent' | 'rows_succeeded' | 'rows_failed' | 'rows_rejected' | 'rows_held'> & {
  rates?: readonly RateView[];
  /** the App Store Server API lookups' rate, only for a run with rows given by a transaction id */
  lookupRate?: RateView;
};

/** What one line of the run's bar says (payload of the bar, and the counts it is drawn from). */
export interface BarParts {
  /** 0..1 */
  progress: number;
  eta: string;
  read: number;
  requests: number;
  succeeded: number;
  failed: number;
  rejected: number;
  held: number;
  /** rows finished per second, smoothed */
  rowsPerSecond: number;
  /** the shared request rate in a few words ("57.0/s learned"), absent until known */
  rate?: string | undefined;
  /** the App Store Server API lookups' rate in a few words ("45.0/s learned"), only when the run looks rows up */
  lookups?: string | undefined;
}

/**
 * The bar's line for a terminal `width` columns wide. The whole line at a wide terminal; narrower, its parts
 * shorten one by one (a shorter bar, no zero counts, the rate's figure without its word, no read and sent counts,
 * no bar) before anything is cut, so that an 80-column terminal still shows the rate and the counts that matter.
 */
export function barLine(width: number, p: BarParts): string {
  const room = Math.max(20, width - 1);
  const bar = (size: number): string => {
    const done = Math.round(Math.min(1, Math.max(0, p.progress)) * size);
    return `${'\u2588'.repeat(done)}${'\u2591'.repeat(size - done)} `;
  };
  const pct = `${Math.floor(Math.min(1, Math.max(0, p.progress)) * 100)}%`;
  const held = p.held > 0 ? ` · held ${p.held}` : '';
  const figure = p.rate?.split(' ')[0];
  // The lookups' rate goes first when the line is short: RevenueCat's rate is the one that paces the run.
  const lookups = p.lookups ? ` · lookups ${p.lookups}` : '';
  const lookupsFigure = p.lookups ? ` · lookups ${p.lookups.split(' ')[0]}` : '';
  const speed = `${p.rowsPerSecond.toFixed(1)} rows/s`;
  const layouts = [
    `${bar(24)}${pct} | read ${p.read} · sent ${p.requests} · ok ${p.succeeded} · failed ${p.failed} · rejected ${p.rejected}${held} | ${speed}${p.rate ? ` · rate ${p.rate}` : ''}${lookups} | ETA ${p.eta}`,
    `${bar(12)}${pct} | read ${p.read} · sent ${p.requests} · ok ${p.succeeded} · failed ${p.failed}${p.rejected > 0 ? ` · rejected ${p.rejected}` : ''}${held} | ${speed}${figure ? ` · rate ${figure}` : ''}${lookupsFigure} | ETA ${p.eta}`,
    `${bar(12)}${pct} | read ${p.read} · sent ${p.requests} · ok ${p.succeeded} · failed ${p.failed}${p.rejected > 0 ? ` · rejected ${p.rejected}` : ''}${held} | ${speed}${figure ? ` · rate ${figure}` : ''} | ETA ${p.eta}`,
    `${bar(10)}${pct} | ok ${p.succeeded} · failed ${p.failed}${held} | ${speed}${figure ? ` · rate ${figure}` : ''} | ETA ${p.eta}`,
    `${pct} | ok ${p.succeeded} · failed ${p.failed}${held}${figure ? ` | rate ${figure}` : ''} | ETA ${p.eta}`,
  ];
  const fits = layouts.find((l) => [...l].length <= room);
  return fits ?? [...(layouts[layouts.length - 1] as string)].slice(0, room).join('');
}

/**
 * The one plain sentence for a person when the limit is first found, or moves by more than 10% from the last one
 * told: "RevenueCat's limit is about 57 requests/s; holding 56". Undefined when there is nothing new to tell.
 */
export class LimitNews {
  private told: number | undefined;
  constructor(private readonly headroom: number) {}

  next(views: readonly RateView[] | undefined): string | undefined {
    if (!views || views.length === 0) return undefined;
    // Only learned limits (not a configured --rate, not the climb of slow start) are news.
    if (views.some((v) => v.phase === 'discovering' || v.learnedAt === undefined)) return undefined;
    const limit = views.reduce((sum, v) => sum + v.rate, 0);
    if (this.told !== undefined && Math.abs(limit - this.told) <= 0.1 * this.told) return undefined;
    const first = this.told === undefined;
    this.told = limit;
    const about = (x: number): string => (x >= 10 ? String(Math.round(x)) : x.toFixed(1));
    const keys = views.length > 1 ? ` (${views.length} keys together)` : '';
    return `RevenueCat's limit is ${first ? '' : 'now '}about ${about(limit)} requests/s${keys}; holding ${about(limit * this.headroom)}`;
  }
}

export interface ProgressDisplay {
  onState(state: ProgressCounts): void;
  /** Writes a line above the bar (the bar is redrawn below it); before the bar starts, straight to the stream. */
  log(text: string): void;
  stop(): void;
}

/** `headroom`: the share of the learned limit the workers send at (config rateHeadroom), for the limit's sentence. */
export function runProgressBar(stream: NodeJS.WriteStream = process.stderr, opts: { headroom?: number } = {}): ProgressDisplay {
  // A MultiBar of one bar: it can print log lines above the bar, which a SingleBar cannot.
  const bars = new cliProgress.MultiBar(
    {
      stream,
      // The line is laid out for the terminal's width (barLine), so nothing is cut at its edge.
      format: (_options, params, payload: Omit<BarParts, 'progress' | 'eta'>) => barLine(params.maxWidth, { ...payload, progress: params.progress, eta: formatEta(params.eta) }),
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
  let learned: string | undefined;
  // the lookups' rate likewise (absent for a run without rows given by a transaction id)
  let lookups: string | undefined;
  const news = new LimitNews(opts.headroom ?? 1);
  const say = (text: string): void => {
    if (bar) bars.log(`${text}\n`);
    else stream.write(`${text}\n`);
  };
  return {
    onState(s) {
      const finished = s.rows_succeeded + s.rows_failed;
      const now = Date.now();
      if (last && now > last.at) rate = rate * 0.7 + (((finished - last.finished) * 1000) / (now - last.at)) * 0.3;
      last = { at: now, finished };
      learned = briefRate(s.rates) ?? learned;
      lookups = briefRate(s.lookupRate ? [s.lookupRate] : undefined) ?? lookups;
      const sentence = news.next(s.rates);
      if (sentence) say(sentence);
      const payload: Omit<BarParts, 'progress' | 'eta'> = {
        read: s.rows_read,
        requests: s.requests_sent,
        succeeded: s.rows_succeeded,
        failed: s.rows_failed,
        rejected: s.rows_rejected,
        // held conflicts: rows that are not sent until someone looks at them
        held: s.rows_held,
        rowsPerSecond: rate,
        rate: learned,
        lookups,
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

/** The ETA as the bar shows it: "ETA 45s", "ETA 3m20s", "ETA 1h05m"; "--" while unknown. */
function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const t = Math.round(seconds);
  const two = (n: number): string => String(n).padStart(2, '0');
  if (t >= 3600) return `${Math.floor(t / 3600)}h${two(Math.floor((t % 3600) / 60))}m`;
  if (t >= 60) return `${Math.floor(t / 60)}m${two(t % 60)}s`;
  return `${t}s`;
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
