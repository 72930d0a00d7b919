/**
 * Seeded pseudo-random numbers: xoshiro128** seeded through splitmix32.
 *
 * Written by hand rather than taken from a package because runs must replay bit for bit on every
 * platform and Node version (Math.random cannot be seeded), and because generators draw from it for
 * every simulated request: it works on 32-bit integers with Math.imul, so a draw allocates nothing.
 * Math.log/sqrt/cos in V8 come from its fdlibm port, so the derived distributions are portable too.
 */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** Second normal deviate of the last polar-method pair, NaN when none is pending. */
  private spareNormal = Number.NaN;
  /** Identity of this stream, kept so fork() depends only on the seed and labels, never on draws made. */
  private keyLow: number;
  private keyHigh: number;

  /** `seed` is any safe integer; the same seed always yields the same sequence. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`rng seed must be a safe integer, got ${seed}`);
    const low = seed >>> 0;
    const high = Math.floor(seed / 0x1_0000_0000) >>> 0;
    this.keyLow = fmix32(low ^ 0x243f6a88);
    this.keyHigh = fmix32((high + 0x85a308d3) >>> 0) ^ this.keyLow;
    this.seedState();
  }

  /**
   * An independent stream derived from this one's seed and `label`. Forking does not advance this
   * stream, and the fork does not depend on how many numbers were drawn here, so adding a consumer
   * (say, a new length distribution) never shifts another consumer's sequence.
   */
  fork(label: string): Rng {
    // Object.create skips the seed constructor: the child's key is derived here instead.
    const child = Object.create(Rng.prototype) as Rng;
    const labelHash = fnv1a32(label);
    child.keyLow = fmix32((this.keyLow ^ labelHash) >>> 0);
    child.keyHigh = fmix32((this.keyHigh + labelHash + 0x9e3779b9) >>> 0) ^ child.keyLow;
    child.spareNormal = Number.NaN;
    child.seedState();
    return child;
  }

  private seedState(): void {
    // splitmix32 expands the 64-bit key into 128 bits of state, as the xoshiro authors recommend.
    let state = (this.keyLow ^ Math.imul(this.keyHigh, 0x2545f491)) >>> 0;
    state = (state + 0x9e3779b9) >>> 0;
    this.s0 = fmix32(state);
    state = (state + 0x9e3779b9) >>> 0;
    this.s1 = fmix32(state ^ this.keyHigh);
    state = (state + 0x9e3779b9) >>> 0;
    this.s2 = fmix32(state);
    state = (state + 0x9e3779b9) >>> 0;
    this.s3 = fmix32(state ^ this.keyHigh);
    // The all-zero state is the one fixed point of xoshiro.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const shifted = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= shifted;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits (two draws), so tiny probabilities are still resolved. */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** Uniform integer in [0, n). The bias of scaling a 53-bit float is below 2^-53 · n, negligible here. */
  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }

  /** Exponential with the given rate (mean 1/rate). */
  exponential(rate: number): number {
    return -Math.log1p(-this.nextFloat()) / rate;
  }

  /** Standard normal (Marsaglia polar method; the second deviate of each pair is kept for the next call). */
  normal(): number {
    const spare = this.spareNormal;
    if (!Number.isNaN(spare)) {
      this.spareNormal = Number.NaN;
      return spare;
    }
    let u: number;
    let v: number;
    let radiusSquared: number;
    do {
      u = 2 * this.nextFloat() - 1;
      v = 2 * this.nextFloat() - 1;
      radiusSquared = u * u + v * v;
    } while (radiusSquared >= 1 || radiusSquared === 0);
    const factor = Math.sqrt((-2 * Math.log(radiusSquared)) / radiusSquared);
    this.spareNormal = v * factor;
    return u * factor;
  }

  /** Gamma(shape, scale), mean shape·scale (Marsaglia–Tsang; shape < 1 via the u^(1/shape) boost). */
  gamma(shape: number, scale: number): number {
    if (shape < 1) {
      const boost = Math.pow(1 - this.nextFloat(), 1 / shape);
      return this.gamma(shape + 1, scale) * boost;
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.nextFloat();
      const xSquared = x * x;
      if (u < 1 - 0.0331 * xSquared * xSquared) return d * v * scale;
      if (Math.log(u) < 0.5 * xSquared + d * (1 - v + Math.log(v))) return d * v * scale;
    }
  }
}

function rotl(value: number, shift: number): number {
  return (value << shift) | (value >>> (32 - shift));
}

/** MurmurHash3's 32-bit finalizer: a bijective avalanche mix. */
function fmix32(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
