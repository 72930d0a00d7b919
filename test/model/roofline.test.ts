import assert from "node:assert/strict";
import { test } from "node:test";

import { loadCatalog } from "../../src/model/catalog.ts";
import type { IterationShape } from "../../src/model/performance.ts";
import {
  architectureOf,
  DEFAULT_ROOFLINE_PARAMS,
  expectedExpertsTouched,
  iterationBytes,
  iterationFlops,
  resolveRooflineParams,
  RooflinePerformanceModel,
  tensorParallelProblem,
  timeFromTerms,
} from "../../src/model/roofline.ts";

const catalog = loadCatalog();
const model = (name: string) => catalog.models.get(name)!;
const prefill = (batch: number, tokens: number): IterationShape => ({
  prefillTokens: batch * tokens,
  numPrefill: batch,
  numDecode: 0,
  decodeContextTokens: 0,
});
const decode = (batch: number, context: number): IterationShape => ({
  prefillTokens: 0,
  numPrefill: 0,
  numDecode: batch,
  decodeContextTokens: batch * context,
});

// Llama-3-8B: h=4096, L=32, 32 heads, 8 KV heads, head_dim 128, ffn 14336 (SwiGLU), vocab 128256, bf16.
// Query width q = 32*128 = 4096, KV width kv = 8*128 = 1024.
void test("Llama-3-8B prefill FLOPs (1 x 1024 tokens, TP1) match the hand count", () => {
  const flops = iterationFlops(model("llama3-8b"), prefill(1, 1024));
  // QKV: 2*h*(q + 2kv) = 2*4096*6144 = 50,331,648 per token per layer; x 1024 tokens x 32 layers
  assert.equal(flops.qkv, 50_331_648 * 1024 * 32); // 1,649,267,441,664
  // Output projection: 2*q*h = 2*4096*4096 = 33,554,432 per token per layer
  assert.equal(flops.out, 33_554_432 * 1024 * 32); // 1,099,511,627,776
  // SwiGLU MLP: 2 * 3 * h * ffn = 2*3*4096*14336 = 352,321,536 per token per layer
  assert.equal(flops.mlp, 352_321_536 * 1024 * 32); // 11,544,872,091,648
  // Causal attention: pairs = 1024*1025/2 = 524,800; QK^T + PV = 4*q = 16,384 FLOPs per pair per layer
  assert.equal(flops.attention, 524_800 * 16_384 * 32); // 275,146,342,400
  // LM head on the last prompt token only: 2*h*vocab = 2*4096*128256 = 1,050,673,152
  assert.equal(flops.lmHead, 1_050_673_152);
  assert.equal(
    flops.total,
    1_649_267_441_664 + 1_099_511_627_776 + 11_544_872_091_648 + 275_146_342_400 + 1_050_673_152,
  );
  // Sanity: ~2 x 7.5e9 non-embedding parameters per token
  assert.ok(Math.abs(flops.total / 1024 / (2 * 6.98e9) - 1) < 0.05);
});

void test("Llama-3-8B decode bytes (16 sequences at context 2048, TP1) match the hand count", () => {
  const bytes = iterationBytes(model("llama3-8b"), decode(16, 2048));
  // Weights per layer (elements): attention h*(q+2kv) + q*h = 25,165,824 + 16,777,216 = 41,943,040,
  // norms 2h = 8,192, MLP 3*h*ffn = 176,160,768 -> 218,112,000 x 2 bytes = 436,224,000 per layer.
  // LM head (h*vocab + final norm h) x 2 = (525,336,576 + 4,096) x 2 = 1,050,681,344.
  assert.equal(bytes.weights, 436_224_000 * 32 + 1_050_681_344); // 15,009,849,344
  // KV read: 2 (K,V) x kv 1024 x 2 bytes = 4,096 bytes per token per layer, over 16*2048 = 32,768 tokens
  assert.equal(bytes.kvRead, 4_096 * 32_768 * 32); // 4,294,967,296
  // KV write: the 16 new tokens
  assert.equal(bytes.kvWrite, 4_096 * 16 * 32); // 2,097,152
  // Activations per token per layer (elements): 11h + 2q + 2kv + 2h + 6ffn = 149,504 (dense ops) and
  // 2q = 8,192 (attention) -> 315,392 bytes; LM head (3h + vocab) x 2 = 281,088 bytes per token.
  assert.equal(bytes.activations, 315_392 * 16 * 32 + 281_088 * 16); // 165,978,112
  assert.equal(bytes.total, bytes.weights + bytes.kvRead + bytes.kvWrite + bytes.activations);
  // GQA: Llama-2-7B (32 KV heads, same h and L) reads 4x the KV cache per token
  assert.equal(iterationBytes(model("llama2-7b"), decode(16, 2048)).kvRead, 4 * bytes.kvRead);
});

// Mixtral-8x7B: h=4096, L=32, 32 heads, 8 KV heads, ffn 14336 per expert, 8 experts, top-2, vocab 32000.
// At TP2 each GPU has q = 16*128 = 2048, kv = 4*128 = 512, ffn shard 7168 of every expert, vocab 16000.
void test("Mixtral-8x7B decode FLOPs and bytes (1 sequence at context 1000, TP2) match the hand count", () => {
  const flops = iterationFlops(model("mixtral-8x7b"), decode(1, 1000), 2);
  assert.equal(flops.qkv, 2 * 4096 * (2048 + 1024) * 32); // 25,165,824 per layer
  assert.equal(flops.out, 2 * 2048 * 4096 * 32); // 16,777,216 per layer
  // Two experts x 2*3*h*ffn_shard (176,160,768) + router 2*h*E (65,536) = 352,387,072 per layer
  assert.equal(flops.mlp, 352_387_072 * 32); // 11,276,386,304
  assert.equal(flops.attention, 4 * 2048 * 1000 * 32); // 262,144,000
  assert.equal(flops.lmHead, 2 * 4096 * 16000); // 131,072,000

  const bytes = iterationBytes(model("mixtral-8x7b"), decode(1, 1000), 2);
  // One token touches k = 2 experts: 8 * (1 - (1 - 2/8)^1) = 2.
  // Per layer: attention (4096*3072 + 2048*4096) + norms 8192 = 20,979,712 elements = 41,959,424 bytes,
  // router 4096*8*2 = 65,536 bytes, two expert shards 2 x 3*4096*7168*2 = 352,321,536 bytes.
  // LM head shard: (4096*16000 + 4096) x 2 = 131,080,192 bytes.
  assert.equal(bytes.weights, (41_959_424 + 65_536 + 352_321_536) * 32 + 131_080_192); // 12,750,168,064
  // KV: 2 x 512 x 2 = 2,048 bytes per token per layer on each GPU
  assert.equal(bytes.kvRead, 2_048 * 1000 * 32);
});

void test("MoE weight traffic grows with the experts a batch touches", () => {
  assert.equal(expectedExpertsTouched(8, 2, 1), 2);
  assert.equal(expectedExpertsTouched(8, 2, 4), 8 * (1 - 0.75 ** 4)); // 5.46875
  assert.ok(Math.abs(expectedExpertsTouched(8, 2, 512) - 8) < 1e-12);
  assert.equal(expectedExpertsTouched(0, 0, 100), 0);
  const mixtral = model("mixtral-8x7b");
  const one = iterationBytes(mixtral, decode(1, 100)).weights;
  const many = iterationBytes(mixtral, decode(64, 100)).weights;
  // From 2 to ~8 experts per layer: weights read grow by about 6 expert matrices per layer
  assert.ok(many / one > 3 && many / one < 4, `ratio ${many / one}`);
  // A dense model with the same attention reads the same weights whatever the batch
  assert.equal(
    iterationBytes(model("mistral-7b"), decode(1, 100)).weights,
    iterationBytes(model("mistral-7b"), decode(64, 100)).weights,
  );
});

void test("iteration time grows with tokens, context and batch", () => {
  const perf = new RooflinePerformanceModel({}, catalog);
  for (const [name, gpu, tp] of [
    ["llama3-8b", "h100-80gb", 1],
    ["mixtral-8x7b", "h100", 2],
    ["llama2-70b", "a100-80gb", 8],
    ["bloom-176b", "h100-80gb", 8],
    ["qwen2.5-72b", "mi300x", 4],
  ] as const) {
    const it = perf.forInstance(name, gpu, tp);
    let previous = 0;
    for (const tokens of [1, 16, 128, 512, 2048, 8192, 32768]) {
      const time = it.iterationTime(prefill(1, tokens));
      assert.ok(time > previous, `${name} prefill ${tokens}`);
      previous = time;
    }
    previous = 0;
    for (const context of [16, 256, 4096, 65536]) {
      const time = it.iterationTime(decode(8, context));
      assert.ok(time > previous, `${name} decode context ${context}`);
      previous = time;
    }
    previous = 0;
    for (const batch of [1, 8, 64, 512]) {
      const time = it.iterationTime(decode(batch, 1024));
      assert.ok(time > previous, `${name} decode batch ${batch}`);
      previous = time;
    }
  }
});

void test("tensor parallelism reduces iteration time; the all-reduce costs something", () => {
  const perf = new RooflinePerformanceModel({}, catalog);
  for (const shape of [prefill(1, 4096), decode(32, 2048)]) {
    const times = [1, 2, 4, 8].map((tp) => perf.forInstance("llama3-70b", "h100", tp).iterationTime(shape));
    for (let i = 1; i < times.length; i++)
      assert.ok(times[i]! < times[i - 1]!, `tp ${2 ** i}: ${times.join(", ")}`);
    // Not perfectly linear: collectives and replicated work
    assert.ok(times[3]! > times[0]! / 8);
  }
  // Over PCIe (L40S) the collectives are a larger share than over NVLink (H100)
  const share = (gpu: string): number => {
    const it = perf.forInstance("llama3-8b", gpu, 4);
    const terms = it.terms(prefill(1, 4096));
    const collectives =
      terms.collectiveTransferSeconds / DEFAULT_ROOFLINE_PARAMS.interconnect +
      terms.collectives * DEFAULT_ROOFLINE_PARAMS.collective_latency_s;
    return collectives / it.iterationTime(prefill(1, 4096));
  };
  assert.ok(share("l40s") > 2 * share("h100"));
});

void test("iterationTime equals the terms recombined, and each phase uses its own efficiencies", () => {
  const params = resolveRooflineParams({
    prefill: { compute: 0.3, memory: 0.4, overhead_s: 0.004 },
    decode: { compute: 0.2, memory: 0.9, overhead_s: 0.001 },
    mixed_batch_factor: 1.2,
  });
  const perf = new RooflinePerformanceModel(params, catalog);
  const it = perf.forInstance("mixtral-8x7b", "h100-80gb", 4);
  const mixed: IterationShape = {
    prefillTokens: 700,
    numPrefill: 2,
    numDecode: 30,
    decodeContextTokens: 30 * 900,
  };
  for (const shape of [prefill(3, 333), decode(17, 1234), mixed]) {
    const direct = it.iterationTime(shape);
    const recombined = timeFromTerms(it.terms(shape), params);
    assert.ok(Math.abs(direct / recombined - 1) < 1e-12, `${direct} vs ${recombined}`);
  }
  // Decode at batch 1 is memory-bound: time ~ weights / (bandwidth x memory efficiency)
  const llama = perf.forInstance("llama3-8b", "h100-80gb", 1);
  const bytes = iterationBytes(model("llama3-8b"), decode(1, 10));
  const expected = bytes.total / (3.35e12 * 0.9) + 0.001;
  assert.ok(Math.abs(llama.iterationTime(decode(1, 10)) / expected - 1) < 1e-9);
  // Long prefill is compute-bound: time ~ FLOPs / (peak x compute efficiency)
  const flops = iterationFlops(model("llama3-8b"), prefill(1, 16384));
  const computeBound = flops.total / (989.4e12 * 0.3) + 0.004;
  assert.ok(Math.abs(llama.iterationTime(prefill(1, 16384)) / computeBound - 1) < 0.01);
});

void test("unloaded latency is one prefill and one decode step", () => {
  const it = new RooflinePerformanceModel({}, catalog).forInstance("llama3-8b", "h100", 1);
  const { ttft_s, tbt_s } = it.unloaded(1000);
  assert.equal(ttft_s, it.iterationTime(prefill(1, 1000)));
  assert.equal(tbt_s, it.iterationTime(decode(1, 1000)));
  assert.ok(ttft_s > tbt_s);
});

void test("tensor-parallel and catalog problems are named", () => {
  const qwen = architectureOf(model("qwen2.5-7b"));
  assert.match(tensorParallelProblem(qwen, 8)!, /does not divide qwen2\.5-7b's 28 attention heads/);
  assert.equal(tensorParallelProblem(qwen, 4), undefined);
  assert.equal(tensorParallelProblem(architectureOf(model("llama3-70b")), 16), undefined); // KV heads replicated
  const perf = new RooflinePerformanceModel({}, catalog);
  assert.throws(() => perf.forInstance("qwen2.5-7b", "h100", 8), /28 attention heads/);
  assert.throws(
    () => perf.forInstance("llama3-8b", "h1000", 1),
    /unknown GPU "h1000"\. Did you mean "h100"\?/,
  );
  assert.throws(
    () => perf.forInstance("llama3-8x", "h100", 1),
    /unknown model "llama3-8x"\. Did you mean "llama3-8b"\?/,
  );
  const { ffn_size: _ffn, ...bare } = model("llama3-8b");
  assert.throws(() => architectureOf(bare), /llama3-8b lacks ffn_size/);
  assert.throws(
    () => resolveRooflineParams({ prefill: { compute: 1.5 } }),
    /efficiency\.prefill\.compute: expected a fraction/,
  );
  assert.deepEqual(resolveRooflineParams({}), DEFAULT_ROOFLINE_PARAMS);
});

void test("the simulator's processor names resolve to GPUs (h100-80gb-pcap is compute-capped)", () => {
  const perf = new RooflinePerformanceModel({}, catalog);
  const h100 = perf.forInstance("bloom-176b", "h100-80gb", 8);
  const pcap = perf.forInstance("bloom-176b", "h100-80gb-pcap", 8);
  const long = prefill(1, 8192);
  // Compute-bound prefill slows by ~1.3x, memory-bound decode not at all
  const slowdown = pcap.iterationTime(long) / h100.iterationTime(long);
  assert.ok(slowdown > 1.2 && slowdown < 1.31, `${slowdown}`);
  assert.equal(pcap.iterationTime(decode(1, 100)), h100.iterationTime(decode(1, 100)));
});
