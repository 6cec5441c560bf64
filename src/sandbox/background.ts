// Traffic of others under the same limit: the public key a migration posts with is the one the live app's SDK
// posts receipts with, so the app's own requests take a share of every window, and that share moves through the
// day. The sandbox does not send those requests; it takes their share off each window's limit (and adds them to
// the usage it announces), which is what a client sees of them: a limit that moves. Steady, a daily-like wave, or
// bursts; the clock is the limit schedule's (it starts at start, when a schedule is set, and on reset).

export const BACKGROUND_PATTERNS = ['none', 'steady', 'wave', 'bursts'] as const;
export type BackgroundPattern = (typeof BACKGROUND_PATTERNS)[number];

export interface BackgroundTraffic {
  pattern: BackgroundPattern;
  /** The share of each window others take: steady's share, the wave's crest, a burst's share (0..1). */
  share: number;
  /** The wave's trough, and the share between bursts (0..1, default 0). */
  baseShare: number;
  /** The wave's period, or the time from one burst's start to the next (seconds). */
  periodSeconds: number;
  /** How long a burst lasts (seconds). */
  burstSeconds: number;
}

export const NO_BACKGROUND: Readonly<BackgroundTraffic> = Object.freeze({ pattern: 'none', share: 0, baseShare: 0, periodSeconds: 120, burstSeconds: 5 });

/**
 * The share of the limit others take `elapsedSeconds` after the clock started. The wave starts at its trough and
 * crests half a period later (a day's traffic, compressed); bursts start at each period's beginning.
 */
export function backgroundShareAt(b: BackgroundTraffic, elapsedSeconds: number): number {
  const t = Math.max(0, elapsedSeconds);
  switch (b.pattern) {
    case 'none':
      return 0;
    case 'steady':
      return b.share;
    case 'wave':
      return b.baseShare + ((b.share - b.baseShare) * (1 - Math.cos((2 * Math.PI * t) / b.periodSeconds))) / 2;
    case 'bursts':
      return t % b.periodSeconds < b.burstSeconds ? b.share : b.baseShare;
  }
}

/** What is left of a limit (requests per window) for the client when others take `share` of it; 0 stays "no limit". */
export function leftOf(limit: number, share: number): number {
  if (limit <= 0) return 0;
  return Math.max(1, limit - Math.round(share * limit));
}

const TEXT = /^(none|steady|wave|bursts)(?::([\d.]+))?(?::([\d.]+))?(?::([\d.]+))?(?::([\d.]+))?$/i;

/**
 * The text form a CLI flag uses: `<pattern>:<share>[:<base share>[:<period s>[:<burst s>]]]`, e.g. `steady:0.3`,
 * `wave:0.5:0:120` (0 to half the limit and back over 2 minutes), `bursts:0.6:0:30:5` (60% for 5 s every 30 s).
 * Returns an error message for text it cannot read.
 */
export function parseBackgroundText(text: string): Partial<BackgroundTraffic> | string {
  const m = TEXT.exec(text.replace(/\s+/g, ''));
  if (!m) return `"${text}" is not <steady|wave|bursts>:<share>[:<base share>[:<period s>[:<burst s>]]] (e.g. wave:0.5:0:120)`;
  const num = (i: number): number | undefined => (m[i] === undefined ? undefined : Number(m[i]));
  const out: Partial<BackgroundTraffic> = { pattern: (m[1] ?? 'none').toLowerCase() as BackgroundPattern };
  const [share, baseShare, periodSeconds, burstSeconds] = [num(2), num(3), num(4), num(5)];
  if (share !== undefined) out.share = share;
  if (baseShare !== undefined) out.baseShare = baseShare;
  if (periodSeconds !== undefined) out.periodSeconds = periodSeconds;
  if (burstSeconds !== undefined) out.burstSeconds = burstSeconds;
  return out;
}
