import type { Rng } from "../core/rng.ts";

/**
 * A small fully connected network for PPO: tanh hidden layers, a linear output layer. All weights
 * live in one Float64Array (layer by layer: W row-major [out][in], then b), so Adam, gradient
 * clipping and checkpoints treat the network as one flat vector. Forward and backward are written by
 * hand over preallocated scratch buffers: one sample at a time, no allocation per call.
 */
export class Mlp {
  readonly sizes: readonly number[];
  readonly params: Float64Array;
  /** Offsets of each layer's weights and biases in `params`. */
  private readonly weightOffset: number[] = [];
  private readonly biasOffset: number[] = [];
  /** activations[l] = input of layer l (activations[0] = x); the last entry is the output. */
  private readonly activations: Float64Array[];
  private readonly deltas: Float64Array[];

  constructor(sizes: readonly number[], params?: Float64Array | readonly number[]) {
    if (sizes.length < 2 || sizes.some((size) => !Number.isInteger(size) || size < 1))
      throw new RangeError(`mlp: layer sizes must be positive integers, got [${sizes.join(", ")}]`);
    this.sizes = [...sizes];
    let offset = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      this.weightOffset.push(offset);
      offset += sizes[l]! * sizes[l + 1]!;
      this.biasOffset.push(offset);
      offset += sizes[l + 1]!;
    }
    if (params !== undefined && params.length !== offset)
      throw new RangeError(
        `mlp: expected ${offset} parameters for [${sizes.join(", ")}], got ${params.length}`,
      );
    this.params = params === undefined ? new Float64Array(offset) : Float64Array.from(params);
    this.activations = sizes.map((size) => new Float64Array(size));
    this.deltas = sizes.map((size) => new Float64Array(size));
  }

  get inputSize(): number {
    return this.sizes[0]!;
  }

  get outputSize(): number {
    return this.sizes[this.sizes.length - 1]!;
  }

  /**
   * Orthogonal-like init is overkill at this size: scaled uniform (Glorot) for hidden layers, and
   * the output layer scaled by `outputGain` (small for a policy head, so initial actions are near 0).
   */
  initialize(rng: Rng, outputGain = 1): this {
    const layers = this.sizes.length - 1;
    for (let l = 0; l < layers; l++) {
      const fanIn = this.sizes[l]!;
      const fanOut = this.sizes[l + 1]!;
      const limit = Math.sqrt(6 / (fanIn + fanOut)) * (l === layers - 1 ? outputGain : 1);
      const w = this.weightOffset[l]!;
      for (let i = 0; i < fanIn * fanOut; i++) this.params[w + i] = (2 * rng.nextFloat() - 1) * limit;
      const b = this.biasOffset[l]!;
      this.params.fill(0, b, b + fanOut);
    }
    return this;
  }

  /**
   * Forward pass for `x[offset .. offset + inputSize)`; returns the output buffer (valid until the
   * next call) and keeps the activations for `backward`.
   */
  forward(x: ArrayLike<number>, offset = 0): Float64Array {
    const params = this.params;
    const input = this.activations[0]!;
    for (let i = 0; i < input.length; i++) input[i] = x[offset + i]!;
    const layers = this.sizes.length - 1;
    for (let l = 0; l < layers; l++) {
      const inSize = this.sizes[l]!;
      const outSize = this.sizes[l + 1]!;
      const a = this.activations[l]!;
      const z = this.activations[l + 1]!;
      let w = this.weightOffset[l]!;
      const b = this.biasOffset[l]!;
      const hidden = l < layers - 1;
      for (let o = 0; o < outSize; o++) {
        let sum = params[b + o]!;
        for (let i = 0; i < inSize; i++) sum += params[w + i]! * a[i]!;
        w += inSize;
        z[o] = hidden ? Math.tanh(sum) : sum;
      }
    }
    return this.activations[layers]!;
  }

  /**
   * Accumulates d(loss)/d(params) into `grad` given d(loss)/d(output) of the last `forward` call.
   */
  backward(outputGrad: ArrayLike<number>, grad: Float64Array): void {
    const params = this.params;
    const layers = this.sizes.length - 1;
    const top = this.deltas[layers]!;
    for (let o = 0; o < top.length; o++) top[o] = outputGrad[o]!;
    for (let l = layers - 1; l >= 0; l--) {
      const inSize = this.sizes[l]!;
      const outSize = this.sizes[l + 1]!;
      const a = this.activations[l]!;
      const delta = this.deltas[l + 1]!;
      const below = this.deltas[l]!;
      const w0 = this.weightOffset[l]!;
      const b = this.biasOffset[l]!;
      if (l > 0) below.fill(0);
      let w = w0;
      for (let o = 0; o < outSize; o++) {
        const d = delta[o]!;
        grad[b + o]! += d;
        if (d !== 0) {
          if (l > 0)
            for (let i = 0; i < inSize; i++) {
              grad[w + i]! += d * a[i]!;
              below[i]! += d * params[w + i]!;
            }
          else for (let i = 0; i < inSize; i++) grad[w + i]! += d * a[i]!;
        }
        w += inSize;
      }
      // Through the tanh of the layer below: d tanh(z)/dz = 1 - tanh(z)^2.
      if (l > 0) for (let i = 0; i < inSize; i++) below[i]! *= 1 - a[i]! * a[i]!;
    }
  }
}

/** Adam (Kingma & Ba) over a flat parameter vector; its moments are part of a checkpoint. */
export class Adam {
  readonly m: Float64Array;
  readonly v: Float64Array;
  step = 0;

  constructor(
    size: number,
    public lr: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-8,
  ) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  apply(params: Float64Array, grad: Float64Array): void {
    this.step++;
    const { m, v, beta1, beta2, epsilon } = this;
    const correction1 = 1 - Math.pow(beta1, this.step);
    const correction2 = 1 - Math.pow(beta2, this.step);
    const stepSize = (this.lr * Math.sqrt(correction2)) / correction1;
    for (let i = 0; i < params.length; i++) {
      const g = grad[i]!;
      m[i] = beta1 * m[i]! + (1 - beta1) * g;
      v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
      params[i]! -= (stepSize * m[i]!) / (Math.sqrt(v[i]!) + epsilon * Math.sqrt(correction2));
    }
  }

  toJSON(): AdamState {
    return { lr: this.lr, step: this.step, m: Array.from(this.m), v: Array.from(this.v) };
  }

  static fromJSON(state: AdamState, size: number): Adam {
    if (state.m.length !== size || state.v.length !== size)
      throw new RangeError(`adam: state has ${state.m.length} moments, the network ${size} parameters`);
    const adam = new Adam(size, state.lr);
    adam.m.set(state.m);
    adam.v.set(state.v);
    adam.step = state.step;
    return adam;
  }
}

export interface AdamState {
  readonly lr: number;
  readonly step: number;
  readonly m: readonly number[];
  readonly v: readonly number[];
}

/** Scales `grad` so its L2 norm is at most `maxNorm`; returns the norm before clipping. */
export function clipGradNorm(grad: Float64Array, maxNorm: number): number {
  let sum = 0;
  for (let i = 0; i < grad.length; i++) sum += grad[i]! * grad[i]!;
  const norm = Math.sqrt(sum);
  if (Number.isFinite(maxNorm) && norm > maxNorm && norm > 0) {
    const scale = maxNorm / norm;
    for (let i = 0; i < grad.length; i++) grad[i]! *= scale;
  }
  return norm;
}
