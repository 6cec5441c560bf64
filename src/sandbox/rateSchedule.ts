// A v1 limit that changes over time ("100/s, halved to 50/s after 40 s, back to 100/s at 90 s"): steps that
// each set the per-second and/or per-minute limit from some seconds after the schedule started. Before the
// first step, and for whatever a step leaves out, the rateLimitPerSecond / rateLimitPerMinute knobs apply.
// The schedule's clock starts when the sandbox starts, when a schedule is set, and on reset.

export interface RateLimitStep {
  /** Seconds after the schedule's start from which this step applies (fractions allowed). */
  afterSeconds: number;
  /** Requests per second from then on (0 = no per-second limit). */
  perSecond?: number;
  /** Requests per minute from then on (0 = no per-minute limit). */
  perMinute?: number;
}

export interface V1Limits {
  /** 0 = none. */
  perSecond: number;
  /** 0 = none. */
  perMinute: number;
}

/** The v1 limit as a benchmark or a test reads it back (GET /_sandbox/rate-limit). */
export interface RateLimitState {
  /** The limits in force now (0 = none); both 0 in unlimited mode. */
  current: V1Limits;
  /** rateLimitPerSecond / rateLimitPerMinute: what applies before the schedule's first step. */
  base: V1Limits;
  window: 'sliding' | 'fixed';
  unlimited: boolean;
  schedule: RateLimitStep[];
  /** Epoch milliseconds the schedule's clock started (start, a new schedule, or reset). */
  scheduleStartedAtMs: number;
  elapsedSeconds: number;
  /** The next step and how far away it is, or null. */
  next: (RateLimitStep & { inSeconds: number }) | null;
  /** Requests admitted in the last 60 s. */
  usagePerMinute: number;
  /** The share of each window others' traffic takes now (options.backgroundTraffic). */
  backgroundShare: number;
}

/** The limits in force `elapsedSeconds` after the schedule started (steps are in ascending order). */
export function limitsAt(base: V1Limits, schedule: readonly RateLimitStep[], elapsedSeconds: number): V1Limits {
  const limits = { ...base };
  for (const step of schedule) {
    if (step.afterSeconds > elapsedSeconds) break;
    if (step.perSecond !== undefined) limits.perSecond = step.perSecond;
    if (step.perMinute !== undefined) limits.perMinute = step.perMinute;
  }
  return limits;
}

/** The first step still to come, or undefined. */
export function nextStep(schedule: readonly RateLimitStep[], elapsedSeconds: number): RateLimitStep | undefined {
  return schedule.find((step) => step.afterSeconds > elapsedSeconds);
}

/**
 * The limit a client would be told per minute (RevenueCat-Rate-Limit-Current-Limit): the tighter of the two
 * limits over a minute; 0 when there is none.
 */
export function perMinuteEquivalent(limits: V1Limits): number {
  const candidates = [limits.perSecond > 0 ? limits.perSecond * 60 : 0, limits.perMinute].filter((n) => n > 0);
  return candidates.length === 0 ? 0 : Math.min(...candidates);
}

const STEP_TEXT = /^(\d+(?:\.\d+)?)s?[:=](\d+)(?:\/(s|m|sec|min|second|minute))?$/i;

/**
 * The text form a CLI flag uses: comma-separated `<seconds>:<limit>[/s|/m]`, per second unless `/m` says per
 * minute, e.g. `0:100,40:50,90:100` or `0:1200/m,60:600/m`. Returns an error message for text it cannot read.
 */
export function parseScheduleText(text: string): RateLimitStep[] | string {
  const steps: RateLimitStep[] = [];
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const m = STEP_TEXT.exec(part.replace(/\s+/g, ''));
    if (!m?.[1] || !m[2]) return `"${part}" is not <seconds>:<limit>[/s|/m] (e.g. 40:50 or 60:600/m)`;
    const perMinute = (m[3] ?? 's').toLowerCase().startsWith('m');
    steps.push({ afterSeconds: Number(m[1]), ...(perMinute ? { perMinute: Number(m[2]) } : { perSecond: Number(m[2]) }) });
  }
  return steps;
}
