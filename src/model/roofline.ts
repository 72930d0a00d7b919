import { ConfigError, unknownNameMessage } from "../errors.ts";
import { gpuNames, loadCatalog, resolveGpu, type Catalog, type GpuSpec, type ModelSpec } from "./catalog.ts";
import type { IterationShape, IterationTimeModel, PerformanceModel } from "./performance.ts";

/**
 * Roofline performance model: an iteration's time from the FLOPs it computes and the bytes it moves
 * per GPU (weights, KV cache, activations), plus tensor-parallel all-reduces and a fixed overhead.
 * Formulas and their assumptions: docs/performance-models.md.
 */

// ---- architecture -------------------------------------------------------------------------------

/** The shape of a transformer as the roofline needs it (from a catalog entry). */
export interface Architecture {
  readonly name: string;
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** MLP intermediate size (per expert for MoE). */
  readonly ffn: number;
  readonly vocab: number;
  /** SwiGLU/GeGLU: three MLP matrices instead of two. */
  readonly gated: boolean;
  /** 0 for dense models. */
  readonly experts: number;
  readonly expertsPerToken: number;
  readonly dtypeBytes: number;
}

/** Reads a catalog entry; fails naming the key the roofline needs but the entry lacks. */
export function architectureOf(model: ModelSpec): Architecture {
  const missing = (["ffn_size", "vocab_size", "mlp"] as const).filter((key) => model[key] === undefined);
  if (missing.length > 0) {
    throw new ConfigError(
      `catalog/models.yaml: ${model.name} lacks ${missing.join(", ")}, which the roofline performance model needs ` +
        "(add them from the model's config.json: intermediate_size, vocab_size, gated for SwiGLU/GeGLU)",
    );
  }
  return {
    name: model.name,
    layers: model.num_layers,
    hidden: model.hidden_size,
    heads: model.num_heads,
    kvHeads: model.num_kv_heads,
    headDim: model.head_dim ?? model.hidden_size / model.num_heads,
    ffn: model.ffn_size!,
    vocab: model.vocab_size!,
    gated: model.mlp === "gated",
    experts: model.num_experts ?? 0,
    expertsPerToken: model.experts_per_token ?? 0,
    dtypeBytes: model.dtype_bytes,
  };
}

/** Why `tp` cannot shard this model (Megatron-style: whole heads per GPU), or undefined if it can. */
export function tensorParallelProblem(arch: Architecture, tp: number): string | undefined {
  if (!Number.isInteger(tp) || tp < 1) return `tensor parallelism must be a positive integer, got ${tp}`;
  if (arch.heads % tp !== 0)
    return `tensor parallelism ${tp} does not divide ${arch.name}'s ${arch.heads} attention heads`;
  if (arch.kvHeads % tp !== 0 && tp % arch.kvHeads !== 0)
    return `tensor parallelism ${tp} neither divides nor is a multiple of ${arch.name}'s ${arch.kvHeads} KV heads`;
  return undefined;
}

/**
 * Expected number of distinct experts that `tokens` tokens route to when each picks k of E uniformly:
 * E * (1 - (1 - k/E)^tokens). One decode token reads k experts' weights, a long prefill all E.
 */
export function expectedExpertsTouched(experts: number, perToken: number, tokens: number): number {
  if (experts === 0 || tokens <= 0) return 0;
  return experts * (1 - Math.pow(1 - perToken / experts, tokens));
}

// ---- per-GPU coefficients -------------------------------------------------------------------------

/**
 * Per-GPU, per-layer costs of one token, one attention pair or one iteration under tensor parallelism
 * `tp`, from which every iteration's counts are linear combinations. Computed once per instance, so
 * the simulator's hot path only multiplies.
 */
export interface ShardCoefficients {
  readonly arch: Architecture;
  readonly tp: number;
  /** FLOPs per token per layer: QKV projection, output projection, MLP (with MoE routing). */
  readonly qkvFlopsPerToken: number;
  readonly outFlopsPerToken: number;
  readonly mlpFlopsPerToken: number;
  /** FLOPs per (query, key) pair per layer: QK^T and PV, 2 x head_dim each, per local head. */
  readonly attentionFlopsPerPair: number;
  /** Weights read once per iteration per layer (attention, norms, dense MLP or MoE router). */
  readonly layerFixedWeightBytes: number;
  /** One expert's shard of weights per layer (0 for dense models). */
  readonly expertWeightBytes: number;
  /** Activation bytes read and written per token per layer outside the attention kernel. */
  readonly denseActivationBytesPerToken: number;
  /** Query read and attention output written per token per layer. */
  readonly attentionActivationBytesPerToken: number;
  /** K and V of one token, one layer, this GPU's KV heads. */
  readonly kvBytesPerToken: number;
  readonly lmHeadFlopsPerToken: number;
  readonly lmHeadWeightBytes: number;
  readonly lmHeadActivationBytesPerToken: number;
}

export function shardCoefficients(arch: Architecture, tp: number): ShardCoefficients {
  const problem = tensorParallelProblem(arch, tp);
  if (problem !== undefined) throw new ConfigError(problem);
  const { hidden: h, headDim: d, dtypeBytes: dt } = arch;
  const q = (arch.heads / tp) * d; // query (and attention output) width on one GPU
  // KV heads are split across GPUs, or replicated when there are fewer KV heads than GPUs.
  const kv = Math.ceil(arch.kvHeads / tp) * d;
  const f = arch.ffn / tp; // each expert's MLP is sharded too (vLLM's default for MoE under TP)
  const mlpMatrices = arch.gated ? 3 : 2;
  const expertFlops = 2 * mlpMatrices * h * f;
  const expertWeights = mlpMatrices * h * f * dt;
  const moe = arch.experts > 0;
  // Router: a replicated h x E projection.
  const routerFlops = moe ? 2 * h * arch.experts : 0;
  const routerWeights = moe ? h * arch.experts * dt : 0;
  // Activation traffic per token (elements): norm 2h, QKV GEMM in h out q+2kv, output GEMM in q out h,
  // residual add + norm 4h, final residual add 3h; MLP in h, up/gate out (2f gated | f), activation
  // reads it and writes f, down reads f and writes h. MoE tokens pass k experts and the router.
  const nonMlp = 11 * h + 2 * q + 2 * kv;
  const mlpPass = arch.gated ? 2 * h + 6 * f : 2 * h + 4 * f;
  const mlpActivation = moe ? arch.expertsPerToken * mlpPass + h + arch.experts : mlpPass;
  const vocabShard = arch.vocab / tp;
  return {
    arch,
    tp,
    qkvFlopsPerToken: 2 * h * (q + 2 * kv),
    outFlopsPerToken: 2 * q * h,
    mlpFlopsPerToken: moe ? arch.expertsPerToken * expertFlops + routerFlops : expertFlops,
    attentionFlopsPerPair: 4 * q,
    layerFixedWeightBytes: (h * (q + 2 * kv) + q * h + 2 * h) * dt + (moe ? routerWeights : expertWeights),
    expertWeightBytes: moe ? expertWeights : 0,
    denseActivationBytesPerToken: (nonMlp + mlpActivation) * dt,
    attentionActivationBytesPerToken: 2 * q * dt,
    kvBytesPerToken: 2 * kv * dt,
    lmHeadFlopsPerToken: 2 * h * vocabShard,
    // The vocabulary-parallel LM head shard plus the final norm.
    lmHeadWeightBytes: (h * vocabShard + h) * dt,
    // Final norm (read and write h), LM head input h, logits out.
    lmHeadActivationBytesPerToken: (3 * h + vocabShard) * dt,
  };
}

// ---- counts ---------------------------------------------------------------------------------------

/** Derived token counts of an iteration. */
export interface IterationTokens {
  /** Tokens through the layers: prompt tokens plus one per decode task. */
  readonly tokens: number;
  /** Tokens that need logits: the last prompt token of each prefill, every decode token. */
  readonly logitTokens: number;
  /**
   * (query, key) pairs the attention computes: causal prefill of equal-length prompts
   * n * s(s+1)/2 (the shape gives only the total, so prompts are taken as equal), and one pair
   * per context token for each decode task.
   */
  readonly attentionPairs: number;
}

export function iterationTokens(shape: IterationShape): IterationTokens {
  const s = shape.numPrefill > 0 ? shape.prefillTokens / shape.numPrefill : 0;
  return {
    tokens: shape.prefillTokens + shape.numDecode,
    logitTokens: shape.numPrefill + shape.numDecode,
    attentionPairs: (shape.prefillTokens * (s + 1)) / 2 + shape.decodeContextTokens,
  };
}

export interface FlopCounts {
  readonly qkv: number;
  readonly out: number;
  /** Attention scores and weighted values over the context. */
  readonly attention: number;
  /** MLP, MoE experts and router. */
  readonly mlp: number;
  readonly lmHead: number;
  readonly total: number;
}

export interface ByteCounts {
  readonly weights: number;
  readonly kvRead: number;
  readonly kvWrite: number;
  readonly activations: number;
  readonly total: number;
}

/** FLOPs of one iteration on one GPU of a `tp`-way tensor-parallel instance (all layers + LM head). */
export function iterationFlops(model: ModelSpec | Architecture, shape: IterationShape, tp = 1): FlopCounts {
  const c = shardCoefficients(asArchitecture(model), tp);
  const { tokens, logitTokens, attentionPairs } = iterationTokens(shape);
  const layers = c.arch.layers;
  const qkv = layers * c.qkvFlopsPerToken * tokens;
  const out = layers * c.outFlopsPerToken * tokens;
  const attention = layers * c.attentionFlopsPerPair * attentionPairs;
  const mlp = layers * c.mlpFlopsPerToken * tokens;
  const lmHead = c.lmHeadFlopsPerToken * logitTokens;
  return { qkv, out, attention, mlp, lmHead, total: qkv + out + attention + mlp + lmHead };
}

/** Bytes one iteration moves through one GPU's memory (weights once, KV reads and writes, activations). */
export function iterationBytes(model: ModelSpec | Architecture, shape: IterationShape, tp = 1): ByteCounts {
  const c = shardCoefficients(asArchitecture(model), tp);
  const { tokens, logitTokens } = iterationTokens(shape);
  const layers = c.arch.layers;
  const experts = expectedExpertsTouched(c.arch.experts, c.arch.expertsPerToken, tokens);
  const weights = layers * (c.layerFixedWeightBytes + c.expertWeightBytes * experts) + c.lmHeadWeightBytes;
  const kvRead = layers * c.kvBytesPerToken * shape.decodeContextTokens;
  const kvWrite = layers * c.kvBytesPerToken * tokens;
  const activations =
    layers * (c.denseActivationBytesPerToken + c.attentionActivationBytesPerToken) * tokens +
    c.lmHeadActivationBytesPerToken * logitTokens;
  return { weights, kvRead, kvWrite, activations, total: weights + kvRead + kvWrite + activations };
}

function asArchitecture(model: ModelSpec | Architecture): Architecture {
  return "layers" in model ? model : architectureOf(model);
}

// ---- parameters -----------------------------------------------------------------------------------

/** How close a phase gets to the hardware's peaks, and its fixed cost per iteration. */
export interface PhaseEfficiency {
  /** Fraction of peak FLOP/s reached by compute-bound work, (0, 1]. */
  readonly compute: number;
  /** Fraction of peak memory bandwidth reached by memory-bound work, (0, 1]. */
  readonly memory: number;
  /** Fixed time per iteration (scheduling, kernel launches, sampling), seconds. */
  readonly overhead_s: number;
}

export interface RooflineParams {
  readonly prefill: PhaseEfficiency;
  readonly decode: PhaseEfficiency;
  /** Fraction of the link bandwidth a collective reaches (NCCL bus bandwidth / link bandwidth). */
  readonly interconnect: number;
  /** Fixed latency of one collective, seconds. */
  readonly collective_latency_s: number;
  /** Multiplier on iterations that mix prefill and decode (1: the roofline's own estimate). */
  readonly mixed_batch_factor: number;
}

export interface RooflineParamsInput {
  readonly prefill?: Partial<PhaseEfficiency>;
  readonly decode?: Partial<PhaseEfficiency>;
  readonly interconnect?: number;
  readonly collective_latency_s?: number;
  readonly mixed_batch_factor?: number;
}

/**
 * Defaults for a current serving stack (vLLM-class, CUDA graphs for decode) on datacenter GPUs:
 * prefill GEMMs near 60% of peak, decode weight streaming near 75% of bandwidth, a few ms per
 * iteration of scheduling and sampling. Calibrate them against measurements (`perf calibrate`).
 */
export const DEFAULT_ROOFLINE_PARAMS: RooflineParams = {
  prefill: { compute: 0.6, memory: 0.7, overhead_s: 0.002 },
  decode: { compute: 0.5, memory: 0.75, overhead_s: 0.002 },
  interconnect: 0.7,
  collective_latency_s: 10e-6,
  mixed_batch_factor: 1,
};

/** Fills defaults and validates ranges; `where` prefixes error messages (e.g. the config key). */
export function resolveRooflineParams(
  input: RooflineParamsInput = {},
  where = "efficiency",
  base: RooflineParams = DEFAULT_ROOFLINE_PARAMS,
): RooflineParams {
  const phase = (name: "prefill" | "decode"): PhaseEfficiency => {
    const given = input[name] ?? {};
    const merged: PhaseEfficiency = {
      compute: given.compute ?? base[name].compute,
      memory: given.memory ?? base[name].memory,
      overhead_s: given.overhead_s ?? base[name].overhead_s,
    };
    fraction(merged.compute, `${where}.${name}.compute`);
    fraction(merged.memory, `${where}.${name}.memory`);
    nonNegative(merged.overhead_s, `${where}.${name}.overhead_s`);
    return merged;
  };
  const params: RooflineParams = {
    prefill: phase("prefill"),
    decode: phase("decode"),
    interconnect: input.interconnect ?? base.interconnect,
    collective_latency_s: input.collective_latency_s ?? base.collective_latency_s,
    mixed_batch_factor: input.mixed_batch_factor ?? base.mixed_batch_factor,
  };
  fraction(params.interconnect, `${where}.interconnect`);
  nonNegative(params.collective_latency_s, `${where}.collective_latency_s`);
  if (!(params.mixed_batch_factor > 0))
    throw new ConfigError(`${where}.mixed_batch_factor: expected a positive number`);
  return params;
}

function fraction(value: number, key: string): void {
  if (!(value > 0 && value <= 1))
    throw new ConfigError(`${key}: expected a fraction in (0, 1], got ${String(value)}`);
}

function nonNegative(value: number, key: string): void {
  if (!(value >= 0 && Number.isFinite(value)))
    throw new ConfigError(`${key}: expected a non-negative number of seconds, got ${String(value)}`);
}

// ---- time -----------------------------------------------------------------------------------------

/**
 * An iteration's time split into the parts the parameters scale: per operator the compute-bound and
 * the memory-bound seconds at peak (efficiency 1) and the operator's repeat count, and the
 * collectives' transfer seconds at full link bandwidth and their number:
 *   time = sum_i repeat_i * max(compute_i / eff_compute, memory_i / eff_memory)
 *          + transfer / eff_interconnect + collectives * collective_latency + overhead.
 */
export interface RooflineTerms {
  /** Operators: per-layer dense (projections, MLP), per-layer attention, LM head. */
  readonly computeSeconds: readonly [number, number, number];
  readonly memorySeconds: readonly [number, number, number];
  readonly repeats: readonly [number, number, number];
  readonly collectiveTransferSeconds: number;
  readonly collectives: number;
  /** Which phase's efficiencies apply: prefill for any iteration with a prompt in it. */
  readonly phase: "prefill" | "decode";
  readonly mixed: boolean;
}

export function timeFromTerms(terms: RooflineTerms, params: RooflineParams): number {
  const eff = terms.phase === "prefill" ? params.prefill : params.decode;
  let time =
    terms.collectiveTransferSeconds / params.interconnect +
    terms.collectives * params.collective_latency_s +
    eff.overhead_s;
  for (let i = 0; i < 3; i++) {
    const compute = terms.computeSeconds[i]! / eff.compute;
    const memory = terms.memorySeconds[i]! / eff.memory;
    time += terms.repeats[i]! * (compute > memory ? compute : memory);
  }
  return terms.mixed ? time * params.mixed_batch_factor : time;
}

/**
 * Per-layer costs of the dense operators (projections, MLP) and the attention kernel, and the LM
 * head's costs, written into `out` = [denseFlops, denseBytes, attentionFlops, attentionBytes,
 * lmHeadFlops, lmHeadBytes]. The same sums as iterationFlops/iterationBytes, grouped by kernel.
 */
function operatorCosts(c: ShardCoefficients, shape: IterationShape, out: Float64Array): void {
  const tokens = shape.prefillTokens + shape.numDecode;
  const logitTokens = shape.numPrefill + shape.numDecode;
  const s = shape.numPrefill > 0 ? shape.prefillTokens / shape.numPrefill : 0;
  const pairs = (shape.prefillTokens * (s + 1)) / 2 + shape.decodeContextTokens;
  const experts = expectedExpertsTouched(c.arch.experts, c.arch.expertsPerToken, tokens);
  out[0] = (c.qkvFlopsPerToken + c.outFlopsPerToken + c.mlpFlopsPerToken) * tokens;
  out[1] = c.layerFixedWeightBytes + c.expertWeightBytes * experts + c.denseActivationBytesPerToken * tokens;
  out[2] = c.attentionFlopsPerPair * pairs;
  out[3] =
    c.kvBytesPerToken * (shape.decodeContextTokens + tokens) + c.attentionActivationBytesPerToken * tokens;
  out[4] = c.lmHeadFlopsPerToken * logitTokens;
  out[5] = c.lmHeadWeightBytes + c.lmHeadActivationBytesPerToken * logitTokens;
}

/** The roofline of one (model, GPU, TP); `iterationTime` allocates nothing (simulator hot path). */
export class RooflineIterationModel implements IterationTimeModel {
  readonly coefficients: ShardCoefficients;
  private readonly peakFlops: number;
  private readonly bandwidth: number;
  private readonly linkBandwidth: number;
  private readonly scratch = new Float64Array(6);

  constructor(
    readonly arch: Architecture,
    readonly gpu: GpuSpec,
    readonly tp: number,
    readonly params: RooflineParams,
  ) {
    this.coefficients = shardCoefficients(arch, tp);
    this.peakFlops = gpu.peak_bf16_flops_per_s;
    this.bandwidth = gpu.memory_bandwidth_bytes_per_s;
    this.linkBandwidth = gpu.interconnect.bandwidth_bytes_per_s;
  }

  iterationTime(shape: IterationShape): number {
    const prefill = shape.numPrefill > 0;
    const eff = prefill ? this.params.prefill : this.params.decode;
    const flopRate = this.peakFlops * eff.compute;
    const byteRate = this.bandwidth * eff.memory;
    const o = this.scratch;
    operatorCosts(this.coefficients, shape, o);
    const layer = Math.max(o[0]! / flopRate, o[1]! / byteRate) + Math.max(o[2]! / flopRate, o[3]! / byteRate);
    const time =
      this.arch.layers * layer +
      Math.max(o[4]! / flopRate, o[5]! / byteRate) +
      this.collectiveTransfer(shape.prefillTokens + shape.numDecode, shape.numPrefill + shape.numDecode) /
        this.params.interconnect +
      this.collectiveCount * this.params.collective_latency_s +
      eff.overhead_s;
    return prefill && shape.numDecode > 0 ? time * this.params.mixed_batch_factor : time;
  }

  /** Two all-reduces of the hidden states per layer, and a gather of the vocabulary-parallel logits. */
  private get collectiveCount(): number {
    return this.tp === 1 ? 0 : 2 * this.arch.layers + 1;
  }

  /**
   * Seconds the collectives take at full link bandwidth: a ring all-reduce moves 2(tp-1)/tp of the
   * message through each GPU's link, a gather (tp-1)/tp.
   */
  private collectiveTransfer(tokens: number, logitTokens: number): number {
    const tp = this.tp;
    if (tp === 1) return 0;
    const dt = this.arch.dtypeBytes;
    const allReduce = ((2 * (tp - 1)) / tp) * tokens * this.arch.hidden * dt;
    const gather = ((tp - 1) / tp) * logitTokens * this.arch.vocab * dt;
    return (2 * this.arch.layers * allReduce + gather) / this.linkBandwidth;
  }

  /** The same time, split so calibration can vary efficiencies without recounting. */
  terms(shape: IterationShape): RooflineTerms {
    const o = new Float64Array(6);
    operatorCosts(this.coefficients, shape, o);
    const layers = this.arch.layers;
    return {
      computeSeconds: [o[0]! / this.peakFlops, o[2]! / this.peakFlops, o[4]! / this.peakFlops],
      memorySeconds: [o[1]! / this.bandwidth, o[3]! / this.bandwidth, o[5]! / this.bandwidth],
      repeats: [layers, layers, 1],
      collectiveTransferSeconds: this.collectiveTransfer(
        shape.prefillTokens + shape.numDecode,
        shape.numPrefill + shape.numDecode,
      ),
      collectives: this.collectiveCount,
      phase: shape.numPrefill > 0 ? "prefill" : "decode",
      mixed: shape.numPrefill > 0 && shape.numDecode > 0,
    };
  }

  unloaded(promptTokens: number): { ttft_s: number; tbt_s: number } {
    return {
      ttft_s: this.iterationTime({
        prefillTokens: promptTokens,
        numPrefill: 1,
        numDecode: 0,
        decodeContextTokens: 0,
      }),
      tbt_s: this.iterationTime({
        prefillTokens: 0,
        numPrefill: 0,
        numDecode: 1,
        decodeContextTokens: promptTokens,
      }),
    };
  }
}

/** Finds a GPU by catalog name, simulator processor name or alias, or fails with a did-you-mean. */
export function requireGpu(catalog: Catalog, name: string, where: string): GpuSpec {
  const gpu = resolveGpu(catalog, name);
  if (gpu === undefined)
    throw new ConfigError(`${where}: ${unknownNameMessage("GPU", name, gpuNames(catalog))}`);
  return gpu;
}

export class RooflinePerformanceModel implements PerformanceModel {
  readonly name = "roofline";
  readonly params: RooflineParams;
  private readonly models = new Map<string, RooflineIterationModel>();

  constructor(
    params: RooflineParamsInput = {},
    readonly catalog: Catalog = loadCatalog(),
  ) {
    this.params = resolveRooflineParams(params);
  }

  forInstance(model: string, hardware: string, tensorParallelism: number): RooflineIterationModel {
    const key = `${model}|${hardware}|${tensorParallelism}`;
    let iterationModel = this.models.get(key);
    if (iterationModel === undefined) {
      const spec = this.catalog.models.get(model);
      if (spec === undefined)
        throw new ConfigError(
          `performance_model roofline: ${unknownNameMessage("model", model, [...this.catalog.models.keys()])}`,
        );
      const gpu = requireGpu(this.catalog, hardware, "performance_model roofline (catalog/gpus.yaml)");
      const arch = architectureOf(spec);
      const problem = tensorParallelProblem(arch, tensorParallelism);
      if (problem !== undefined) throw new ConfigError(`performance_model roofline: ${problem}`);
      iterationModel = new RooflineIterationModel(arch, gpu, tensorParallelism, this.params);
      this.models.set(key, iterationModel);
    }
    return iterationModel;
  }
}
