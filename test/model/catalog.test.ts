import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import {
  gpuNames,
  kvBytesPerToken,
  loadCatalog,
  loadCatalogFrom,
  resolveGpu,
} from "../../src/model/catalog.ts";
import { architectureOf, tensorParallelProblem } from "../../src/model/roofline.ts";
import { CATALOG_DIR } from "../../src/paths.ts";

const catalog = loadCatalog();

function catalogCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "splitscale-catalog-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(CATALOG_DIR, dir, { recursive: true });
  return dir;
}

void test("every model loads with the architecture the roofline needs", () => {
  for (const name of [
    "llama2-7b",
    "llama2-13b",
    "llama2-70b",
    "llama3-8b",
    "llama3-70b",
    "mistral-7b",
    "mixtral-8x7b",
    "qwen2.5-7b",
    "qwen2.5-72b",
  ])
    assert.ok(catalog.models.has(name), name);
  for (const model of catalog.models.values()) {
    const arch = architectureOf(model);
    assert.equal(
      arch.headDim * arch.heads,
      model.head_dim === undefined ? model.hidden_size : arch.headDim * arch.heads,
    );
    assert.ok(Number.isInteger(arch.headDim), model.name);
    assert.equal(tensorParallelProblem(arch, 1), undefined);
    assert.ok(model.weights_bytes > 0 && model.dtype_bytes === 2, model.name);
  }
  assert.equal(catalog.models.get("mixtral-8x7b")!.num_experts, 8);
  assert.equal(catalog.models.get("mixtral-8x7b")!.experts_per_token, 2);
});

void test("the upstream entries keep splitwise-sim's numbers (simulator parity depends on them)", () => {
  const pick = (name: string) => {
    const m = catalog.models.get(name)!;
    return [m.num_layers, m.hidden_size, m.num_heads, m.num_kv_heads, m.weights_bytes, m.dtype_bytes];
  };
  assert.deepEqual(pick("bloom-176b"), [70, 14336, 112, 112, 329e9, 2]);
  assert.deepEqual(pick("llama2-70b"), [80, 8192, 64, 8, 135e9, 2]);
  assert.deepEqual(pick("gpt3-175b"), [96, 12288, 96, 96, 350e9, 2]);
  // Appendix B: KV bytes per token 2*h*L*dtype (GQA ignored as upstream does)
  assert.equal(kvBytesPerToken(catalog.models.get("bloom-176b")!, true), 4_014_080);
  assert.equal(kvBytesPerToken(catalog.models.get("llama2-70b")!, true), 2_621_440);
  assert.equal(catalog.models.get("bloom-176b")!.ffn_size, 4 * 14336);
  assert.equal(catalog.models.get("bloom-176b")!.vocab_size, 250880);
  assert.equal(catalog.models.get("llama2-70b")!.ffn_size, 28672);
  assert.equal(catalog.models.get("llama2-70b")!.vocab_size, 32000);
});

void test("new models' weights match 2 bytes per published parameter", () => {
  // Parameters from the architecture: layers x (attention + MLP + norms) + embeddings + LM head + norm
  // (Qwen2.5 adds QKV biases, counted here too). They equal the published counts.
  const published: Record<string, number> = {
    "llama2-7b": 6_738_415_616,
    "llama3-8b": 8_030_261_248,
    "llama3-70b": 70_553_706_496,
    "mistral-7b": 7_241_732_096,
    "mixtral-8x7b": 46_702_792_704,
    "qwen2.5-7b": 7_615_616_512,
    "qwen2.5-72b": 72_706_203_648,
  };
  for (const [name, parameters] of Object.entries(published)) {
    const m = catalog.models.get(name)!;
    const arch = architectureOf(m);
    const q = arch.heads * arch.headDim;
    const kv = arch.kvHeads * arch.headDim;
    const bias = name.startsWith("qwen") ? q + 2 * kv : 0;
    const mlp = 3 * arch.hidden * arch.ffn * Math.max(1, arch.experts) + arch.hidden * arch.experts;
    const layer = arch.hidden * (q + 2 * kv) + bias + q * arch.hidden + mlp + 2 * arch.hidden;
    const total = arch.layers * layer + 2 * arch.vocab * arch.hidden + arch.hidden;
    assert.equal(total, parameters, name);
    assert.equal(m.weights_bytes, 2 * parameters, name);
  }
});

void test("every GPU loads; processor names and aliases resolve", () => {
  for (const name of ["a100-sxm-80gb", "h100-sxm-80gb", "h200-sxm-141gb", "l40s-48gb", "mi300x-192gb"])
    assert.ok(catalog.gpus.has(name), name);
  for (const gpu of catalog.gpus.values()) {
    assert.ok(gpu.peak_bf16_flops_per_s > 1e14 && gpu.memory_bandwidth_bytes_per_s > 5e11, gpu.name);
    for (const alias of [
      gpu.name,
      ...(gpu.aliases ?? []),
      ...(gpu.processor === undefined ? [] : [gpu.processor]),
    ])
      assert.equal(resolveGpu(catalog, alias), gpu, alias);
  }
  // Every processor the simulator's SKUs use maps to a GPU
  for (const sku of catalog.skus.values()) assert.ok(resolveGpu(catalog, sku.processor), sku.processor);
  assert.equal(resolveGpu(catalog, "h100-80gb-pcap")!.name, "h100-sxm-80gb-pcap");
  assert.equal(resolveGpu(catalog, "b200"), undefined);
  assert.equal(new Set(gpuNames(catalog)).size, gpuNames(catalog).length);
});

void test("a bad catalog entry names the file and the key", () => {
  const dir = catalogCopy();
  const models = join(dir, "models.yaml");
  writeFileSync(models, readFileSync(models, "utf8").replace("  ffn_size: 14336\n", '  ffn_size: "big"\n'));
  assert.throws(
    () => loadCatalogFrom(dir),
    (error: Error) => {
      assert.equal(error.name, "ConfigError");
      assert.match(
        error.message,
        /models\.yaml: llama3-8b\.ffn_size: Invalid input: expected number, received string/,
      );
      return true;
    },
  );

  const dir2 = catalogCopy();
  const gpus = join(dir2, "gpus.yaml");
  writeFileSync(gpus, `${readFileSync(gpus, "utf8")}b200:\n  peak_flops: 2.2e15\n`);
  assert.throws(() => loadCatalogFrom(dir2), /gpus\.yaml: b200: Unrecognized key: "peak_flops"/);

  const dir3 = catalogCopy();
  writeFileSync(join(dir3, "gpus.yaml"), `${readFileSync(join(dir3, "gpus.yaml"), "utf8")}x:\n  - [\n`);
  assert.throws(() => loadCatalogFrom(dir3), /gpus\.yaml: /);

  const dir4 = catalogCopy();
  const moe =
    "moe-x:\n  num_layers: 2\n  hidden_size: 64\n  num_heads: 4\n  num_kv_heads: 3\n  weights_bytes: 1\n  dtype_bytes: 2\n  num_experts: 4\n";
  writeFileSync(join(dir4, "models.yaml"), `${readFileSync(join(dir4, "models.yaml"), "utf8")}${moe}`);
  assert.throws(
    () => loadCatalogFrom(dir4),
    (error: Error) => {
      assert.match(error.message, /moe-x\.num_kv_heads: num_kv_heads \(3\) must divide num_heads \(4\)/);
      assert.match(
        error.message,
        /moe-x\.experts_per_token: MoE models need both num_experts and experts_per_token/,
      );
      return true;
    },
  );

  const dir5 = catalogCopy();
  writeFileSync(
    join(dir5, "gpus.yaml"),
    `${readFileSync(join(dir5, "gpus.yaml"), "utf8")}dup:\n  aliases: [h100]\n  peak_bf16_flops_per_s: 1.0e15\n  memory_bandwidth_bytes_per_s: 1.0e12\n  memory_bytes: 1\n  interconnect: { name: x, bandwidth_bytes_per_s: 1 }\n`,
  );
  assert.throws(
    () => loadCatalogFrom(dir5),
    /gpus\.yaml: dup: the name "h100" already names GPU h100-sxm-80gb/,
  );
});
