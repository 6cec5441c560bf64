// Seeded randomness, so a rehearsal that failed with faults can be replayed with the same fault sequence
// (given the same request order).

/** mulberry32: tiny, fast, good enough for fault injection; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type FaultKind = 'none' | '5xx' | 'reset' | 'hang';

export interface FaultRates {
  fault5xxRate: number;
  resetRate: number;
  hangRate: number;
}

export class FaultPlanner {
  private faultRandom!: () => number;
  private jitterRandom!: () => number;

  constructor(seed: number) {
    this.reseed(seed);
  }

  // Two streams: changing the jitter knob must not shift which requests get a fault.
  reseed(seed: number): void {
    this.faultRandom = mulberry32(seed);
    this.jitterRandom = mulberry32(seed ^ 0x9e3779b9);
  }

  /**
   * One draw per request, whatever the rates, so the n-th request's fate depends only on the seed and n.
   * The rates are bands of that one draw in the order 5xx, reset, hang: they are exclusive, and when they
   * sum above 1 the later ones get only what is left.
   */
  decide(rates: FaultRates): FaultKind {
    const r = this.faultRandom();
    if (r < rates.fault5xxRate) return '5xx';
    if (r < rates.fault5xxRate + rates.resetRate) return 'reset';
    if (r < rates.fault5xxRate + rates.resetRate + rates.hangRate) return 'hang';
    return 'none';
  }

  pick5xx(): 500 | 502 | 503 {
    const r = this.faultRandom();
    return r < 1 / 3 ? 500 : r < 2 / 3 ? 502 : 503;
  }

  /** Uniform integer in 0..max. */
  jitter(max: number): number {
    if (max <= 0) return 0;
    return Math.floor(this.jitterRandom() * (max + 1));
  }
}
