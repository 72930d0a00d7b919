import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { UsageError } from "../../src/errors.ts";
import {
  kthenaConfigSchema,
  loadKthenaPolicyText,
  parseDuration,
  parseKthenaConfig,
  parseQuantity,
} from "../../src/policy/kthena/config.ts";
import type { KthenaLoadOptions } from "../../src/policy/kthena/config.ts";
import { createKthenaFromPolicyConfig, createKthenaPolicy } from "../../src/policy/kthena/policy.ts";
import { GAUGES } from "../../src/policy/types.ts";
import { kobservation, kpool, uniform } from "./kthena-helpers.ts";
import { SEED_003_SMART_SCALING } from "../../src/policy/kthena/seed-example.ts";
import { SEEDS } from "../fixtures/reference.ts";

const SEED_SMART = SEED_003_SMART_SCALING;

// Seed 003, "标准自动扩缩容示例", verbatim.
const SEED_CPU = `apiVersion: registry.matrixinfer.ai/v1alpha1
kind: AutoscalingPolicyBinding
metadata:
  name: cpu-based-scaling
spec:
  scalingConfiguration:
    minReplicas: 1
    maxReplicas: 5
    target:
      targetRef:
        apiVersion: workload.matrixinfer.ai/v1alpha1
        kind: ModelInfer
        name: cpu-model
    metricTargets:
      cpu: 70
`;

/** The behavior Kthena's webhook injects when `behavior` is omitted (spec §4.2). */
const WEBHOOK_BEHAVIOR = {
  scale_up: {
    stable: { instances: 4, percent: 100, period_s: 60, select_policy: "Or", stabilization_window_s: 0 },
    panic: { percent: 0, period_s: 0, threshold_percent: 200, hold_s: 0 },
  },
  scale_down: { instances: 0, percent: 100, period_s: 60, select_policy: "Or", stabilization_window_s: 300 },
};

void test("seed 003's smart-scaling example loads unchanged (webhook defaults for the blocks it omits)", () => {
  const config = loadKthenaPolicyText(SEED_SMART, "seed003.yaml");
  assert.deepEqual(config, {
    name: "smart-scaling-binding",
    interval_s: 15,
    upstream_compat: false,
    tolerance_percent: 10,
    metrics: [
      { name: "gpu_utilization", target_value: 80, source: "pod" },
      { name: "concurrent_requests", target_value: 50, source: "pod" },
    ],
    behavior: {
      scale_up: {
        // stablePolicy omitted: the webhook injects its whole block.
        stable: WEBHOOK_BEHAVIOR.scale_up.stable,
        // panicPolicy given in part: CRD field defaults (1000 %, period unset = 0) around the given values.
        panic: { percent: 1000, period_s: 0, threshold_percent: 150, hold_s: 300 },
      },
      // scaleDown given in part: CRD field defaults, the given 3 min window.
      scale_down: {
        instances: 1,
        percent: 100,
        period_s: 15,
        select_policy: "Or",
        stabilization_window_s: 180,
      },
    },
    target: { kind: "homogeneous", pool: "llm-model", min_replicas: 2, max_replicas: 10 },
  });
});

void test("seed 003 under the CRD-only regime: every block gets the CRD field defaults", () => {
  const config = loadKthenaPolicyText(SEED_SMART, "seed003.yaml", { defaults: "crd" });
  assert.deepEqual(config.behavior, {
    scale_up: {
      stable: { instances: 1, percent: 100, period_s: 15, select_policy: "Or", stabilization_window_s: 0 },
      panic: { percent: 1000, period_s: 0, threshold_percent: 150, hold_s: 300 },
    },
    scale_down: {
      instances: 1,
      percent: 100,
      period_s: 15,
      select_policy: "Or",
      stabilization_window_s: 180,
    },
  });
});

void test("seed 003's binding-only cpu example loads; cpu is not simulated, so the policy sees no signal", () => {
  const config = loadKthenaPolicyText(SEED_CPU, "seed003-cpu.yaml");
  assert.equal(config.name, "cpu-based-scaling");
  assert.equal(config.tolerance_percent, 10);
  assert.deepEqual(config.metrics, [{ name: "cpu", target_value: 70, source: "pod" }]);
  assert.deepEqual(config.behavior, WEBHOOK_BEHAVIOR);
  assert.deepEqual(config.target, {
    kind: "homogeneous",
    pool: "cpu-model",
    min_replicas: 1,
    max_replicas: 5,
  });
  const policy = createKthenaPolicy(config, [{ name: "cpu-model", role: "mixed" }]);
  const pool = kpool({
    name: "cpu-model",
    replicas: uniform("cpu-model", 2, { [GAUGES.gpuUtilization]: 90 }),
  });
  const { decision } = policy.decide(kobservation(0, [pool]), policy.init(0));
  assert.deepEqual(decision.targets, {});
  assert.match(decision.reasons.join("\n"), /no metric signal/);
  // A live engine exposing cpu_utilization gives it one: 2 × 140 % / 70 → 4.
  const live = kpool({ name: "cpu-model", replicas: uniform("cpu-model", 2, { cpu_utilization: 140 }) });
  assert.deepEqual(policy.decide(kobservation(0, [live]), policy.init(0)).decision.targets, {
    "cpu-model": { desired: 4 },
  });
});

void test("the binding-era API (v0.4.0): metricName lists, homogeneousTarget, heterogeneousTarget, subTarget", () => {
  const policy = `apiVersion: workload.serving.volcano.sh/v1alpha1
kind: AutoscalingPolicy
metadata:
  name: waiting-policy
spec:
  tolerancePercent: 5
  metrics:
    - metricName: vllm:num_requests_waiting
      targetValue: "8"
  behavior:
    scaleUp:
      stablePolicy:
        instances: 2
        period: 30s
        selectPolicy: And
      panicPolicy:
        period: 10s
        panicThresholdPercent: 300
    scaleDown:
      instances: 1
      period: 1m
`;
  const homogeneous = `${policy}---
apiVersion: workload.serving.volcano.sh/v1alpha1
kind: AutoscalingPolicyBinding
metadata:
  name: qwen-binding
spec:
  policyRef:
    name: waiting-policy
  homogeneousTarget:
    minReplicas: 1
    maxReplicas: 8
    target:
      targetRef:
        kind: ModelServing
        name: qwen
      subTarget:
        kind: Role
        name: decode
      metricEndpoint:
        uri: /metrics
        port: 8000
`;
  const config = loadKthenaPolicyText(homogeneous, "v04.yaml");
  assert.equal(config.tolerance_percent, 5);
  assert.deepEqual(config.metrics, [{ name: "vllm:num_requests_waiting", target_value: 8, source: "pod" }]);
  assert.deepEqual(config.behavior, {
    scale_up: {
      stable: { instances: 2, percent: 100, period_s: 30, select_policy: "And", stabilization_window_s: 0 },
      panic: { percent: 1000, period_s: 10, threshold_percent: 300, hold_s: 60 },
    },
    scale_down: {
      instances: 1,
      percent: 100,
      period_s: 60,
      select_policy: "Or",
      stabilization_window_s: 300,
    },
  });
  assert.deepEqual(config.target, {
    kind: "homogeneous",
    pool: "qwen",
    role: "decode",
    min_replicas: 1,
    max_replicas: 8,
  });
  // The role target picks the decode pool; the vLLM name reads our num_requests_waiting gauge.
  const scaler = createKthenaPolicy(config, [
    { name: "pf", role: "prefill" },
    { name: "dc", role: "decode" },
  ]);
  const pools = [
    kpool({ name: "pf", role: "prefill", replicas: uniform("pf", 1, { [GAUGES.waiting]: 100 }) }),
    kpool({ name: "dc", role: "decode", replicas: uniform("dc", 2, { [GAUGES.waiting]: 12 }) }),
  ];
  assert.deepEqual(scaler.decide(kobservation(0, pools), scaler.init(0)).decision.targets, {
    dc: { desired: 3 },
  });

  const heterogeneous = `${policy}---
apiVersion: workload.serving.volcano.sh/v1alpha1
kind: AutoscalingPolicyBinding
metadata:
  name: mixed-gpus
spec:
  policyRef:
    name: waiting-policy
  heterogeneousTarget:
    costExpansionRatePercent: 150
    params:
      - target:
          targetRef:
            name: llama-h100
        cost: 100
        minReplicas: 0
        maxReplicas: 4
      - target:
          targetRef:
            name: llama-a100
        cost: 60
        minReplicas: 1
        maxReplicas: 8
`;
  assert.deepEqual(loadKthenaPolicyText(heterogeneous, "v04-het.yaml").target, {
    kind: "heterogeneous",
    cost_expansion_rate_percent: 150,
    params: [
      { pool: "llama-h100", cost: 100, min_replicas: 0, max_replicas: 4 },
      { pool: "llama-a100", cost: 60, min_replicas: 1, max_replicas: 8 },
    ],
  });
});

void test("the HEAD API: one AutoscalingPolicy with its target, metric sources and quantities", () => {
  const homogeneous = `apiVersion: workload.serving.volcano.sh/v1alpha1
kind: AutoscalingPolicy
metadata:
  name: podinfo
spec:
  metrics:
    - name: waiting
      targetValue: 1500m
    - name: http_rps
      targetValue: "1k"
  homogeneousTarget:
    minReplicas: 1
    maxReplicas: 6
    target:
      targetRef:
        kind: ModelServing
        name: podinfo-ms
      metricSources:
        waiting:
          pod:
            name: vllm:num_requests_waiting
            port: 8000
        http_rps:
          prometheus:
            serverURL: http://prometheus.monitoring.svc:9090
            query: sum(rate(http_requests_total[2m]))
`;
  const config = loadKthenaPolicyText(homogeneous, "head.yaml");
  assert.deepEqual(config.metrics, [
    { name: "waiting", target_value: 1.5, source: "pod", pod_metric: "vllm:num_requests_waiting" },
    { name: "http_rps", target_value: 1000, source: "external" },
  ]);
  assert.deepEqual(config.behavior, WEBHOOK_BEHAVIOR);
  assert.deepEqual(config.target, {
    kind: "homogeneous",
    pool: "podinfo-ms",
    min_replicas: 1,
    max_replicas: 6,
  });

  const disaggregated = `apiVersion: workload.kthena.io/v1alpha1
kind: AutoscalingPolicy
metadata:
  name: pd
spec:
  metrics:
    - name: kv_cache_usage_perc
      targetValue: "0.7"
  disaggregatedTarget:
    targetRef:
      name: deepseek
    roles:
      prefill:
        minReplicas: 1
        maxReplicas: 3
        metrics:
          - name: pending_prefill_tokens
            targetValue: 8k
      decode:
        minReplicas: 1
        maxReplicas: 20
    ratioConstraint:
      numeratorRole: prefill
      denominatorRole: decode
      minRatio: 250m
      maxRatio: "1"
`;
  assert.deepEqual(loadKthenaPolicyText(disaggregated, "pd.yaml").target, {
    kind: "disaggregated",
    pool: "deepseek",
    roles: {
      prefill: {
        min_replicas: 1,
        max_replicas: 3,
        metrics: [{ name: "pending_prefill_tokens", target_value: 8000, source: "pod" }],
      },
      decode: {
        min_replicas: 1,
        max_replicas: 20,
        metrics: [{ name: "kv_cache_usage_perc", target_value: 0.7, source: "pod" }],
      },
    },
    ratio: { numerator_role: "prefill", denominator_role: "decode", min_ratio: 0.25, max_ratio: 1 },
  });
});

void test("durations and quantities", () => {
  assert.equal(parseDuration("5m"), 300);
  assert.equal(parseDuration("3m"), 180);
  assert.equal(parseDuration("15s"), 15);
  assert.equal(parseDuration("1h30m"), 5400);
  assert.equal(parseDuration("500ms"), 0.5);
  assert.equal(parseDuration("1.5h"), 5400);
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration("5"), undefined);
  assert.equal(parseDuration("5 minutes"), undefined);
  assert.equal(parseQuantity("500m"), 0.5);
  assert.equal(parseQuantity("1.5k"), 1500);
  assert.equal(parseQuantity("2Gi"), 2 * 2 ** 30);
  assert.equal(parseQuantity("1e3"), 1000);
  assert.equal(parseQuantity(80), 80);
  assert.equal(parseQuantity("eighty"), undefined);
});

// ---------------------------------------------------------------------------------------------
// Bad input: every message names the file, the document, the line, the field and what was expected

function loadError(text: string, options?: KthenaLoadOptions): string {
  try {
    loadKthenaPolicyText(text, "bad.yaml", options);
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    return error.message;
  }
  assert.fail("expected the file to be refused");
}

void test("a misspelt field is named with a suggestion, its line and its document", () => {
  const message = loadError(SEED_SMART.replace("minReplicas: 2", "minReplica: 2"));
  assert.equal(
    message,
    'bad.yaml:23: document 2 (AutoscalingPolicyBinding "smart-scaling-binding"): ' +
      "spec.scalingConfiguration.minReplica: unknown field, did you mean minReplicas?",
  );
  const unknown = loadError(
    SEED_SMART.replace("  tolerancePercent: 10", "  tolerancePercent: 10\n  sloTarget: 1"),
  );
  assert.match(
    unknown,
    /bad\.yaml:7: document 1 \(AutoscalingPolicy "llm-smart-scaling"\): spec\.sloTarget: unknown field \(expected one of: tolerancePercent, metrics, behavior/,
  );
});

void test("minReplicas > maxReplicas is refused by default and accepted with upstream_compat (kthena#1668)", () => {
  const text = SEED_SMART.replace("minReplicas: 2", "minReplicas: 12");
  const message = loadError(text);
  assert.match(
    message,
    /^bad\.yaml:23: document 2 .*spec\.scalingConfiguration\.minReplicas: minReplicas \(12\) must be <= maxReplicas \(10\)/,
  );
  const config = loadKthenaPolicyText(text, "bad.yaml", { upstream_compat: true });
  assert.equal(config.upstream_compat, true);
  assert.deepEqual(config.target, {
    kind: "homogeneous",
    pool: "llm-model",
    min_replicas: 12,
    max_replicas: 10,
  });
});

void test("an unknown metric name is refused with the closest known one", () => {
  const message = loadError(SEED_SMART.replace("gpu_utilization: 80", "gpu_utilisation: 80"));
  assert.match(
    message,
    /^bad\.yaml:31: document 2 .*spec\.scalingConfiguration\.metricTargets\.gpu_utilisation: unknown metric "gpu_utilisation", did you mean gpu_utilization\?/,
  );
  assert.match(message, /known: .*inference_latency_ms/);
  const head = loadError(`apiVersion: workload.serving.volcano.sh/v1alpha1
kind: AutoscalingPolicy
metadata:
  name: p
spec:
  metrics:
    - name: w
      targetValue: 1
  homogeneousTarget:
    minReplicas: 1
    maxReplicas: 2
    target:
      targetRef:
        name: x
      metricSources:
        w:
          pod:
            name: vllm:num_request_waiting
`);
  assert.match(
    head,
    /^bad\.yaml:18: .*spec\.homogeneousTarget\.target\.metricSources\.w\.pod\.name: unknown metric "vllm:num_request_waiting", did you mean vllm:num_requests_waiting\?/,
  );
});

void test("a policyRef to a policy that is not in the file is refused", () => {
  const message = loadError(
    SEED_SMART.replace("    name: llm-smart-scaling\n  scaling", "    name: llm-smart-scalng\n  scaling"),
  );
  assert.match(
    message,
    /^bad\.yaml:21: document 2 .*spec\.policyRef\.name: AutoscalingPolicy "llm-smart-scalng" is not defined in this file, did you mean llm-smart-scaling\? \(policies here: llm-smart-scaling\)/,
  );
});

void test("non-positive or malformed targets are refused", () => {
  for (const value of ["0", "-5", '"0"']) {
    const message = loadError(SEED_SMART.replace("concurrent_requests: 50", `concurrent_requests: ${value}`));
    assert.match(
      message,
      /^bad\.yaml:32: .*spec\.scalingConfiguration\.metricTargets\.concurrent_requests: metric target must be a number > 0/,
      value,
    );
  }
  const malformed = loadError(SEED_SMART.replace("concurrent_requests: 50", "concurrent_requests: fifty"));
  assert.match(malformed, /metricTargets\.concurrent_requests: expected a number or a Kubernetes quantity/);
});

void test("other refusals: durations, kinds, apiVersions, targets and YAML syntax", () => {
  assert.match(
    loadError(SEED_SMART.replace("panicModeHold: 5m", "panicModeHold: 5 minutes")),
    /^bad\.yaml:11: document 1 .*spec\.behavior\.scaleUp\.panicPolicy\.panicModeHold: expected a Go duration/,
  );
  assert.match(
    loadError(SEED_SMART.replace("panicThresholdPercent: 150", "panicThresholdPercent: 100")),
    /panicThresholdPercent: Too small: expected number to be >=110/,
  );
  assert.match(
    loadError(SEED_SMART.replace("kind: AutoscalingPolicyBinding", "kind: AutoscalingPolicyBindng")),
    /kind: unknown kind "AutoscalingPolicyBindng", did you mean AutoscalingPolicyBinding\?/,
  );
  assert.match(
    loadError(SEED_CPU.replace("registry.matrixinfer.ai/v1alpha1", "autoscaling/v2")),
    /^bad\.yaml:1: .*apiVersion: expected an apiVersion in the matrixinfer\.ai/,
  );
  assert.match(loadError(SEED_SMART.split("---")[0]!), /no scaling target/);
  assert.match(
    loadError(`${SEED_CPU}---\n${SEED_CPU.replace("cpu-based-scaling", "other")}`),
    /2 scaling targets/,
  );
  assert.equal(
    loadKthenaPolicyText(`${SEED_CPU}---\n${SEED_CPU.replace("cpu-based-scaling", "other")}`, "two.yaml", {
      target: "other",
    }).name,
    "other",
  );
  assert.match(loadError("kind: [unclosed"), /^bad\.yaml:1:\d+: document 1: YAML syntax error/);
  // Other kinds may share the file (the workload itself).
  const withWorkload = `apiVersion: workload.serving.volcano.sh/v1alpha1\nkind: ModelServing\nmetadata:\n  name: cpu-model\n---\n${SEED_CPU}`;
  assert.equal(loadKthenaPolicyText(withWorkload, "ok.yaml").name, "cpu-based-scaling");
});

void test("our own snake_case config: defaults, unknown keys and cross-field checks", () => {
  const config = parseKthenaConfig({ metrics: [{ name: "gpu_utilization", target_value: 80 }] });
  assert.deepEqual(config.behavior, WEBHOOK_BEHAVIOR);
  assert.deepEqual(config.target, { kind: "homogeneous" });
  assert.equal(kthenaConfigSchema.safeParse(config).success, true); // idempotent on its own output
  assert.throws(
    () =>
      parseKthenaConfig(
        { tolerance_percnt: 5, metrics: [{ name: "gpu_utilization", target_value: 80 }] },
        "policy.yaml",
      ),
    /policy\.yaml: tolerance_percnt: unknown field, did you mean tolerance_percent\?/,
  );
  assert.throws(() => parseKthenaConfig({}), /metrics: a homogeneous target needs at least one metric/);
  assert.throws(
    () => parseKthenaConfig({ metrics: [{ name: "gpu_utilizaton", target_value: 80 }] }),
    /metrics\[0\]\.name: unknown metric "gpu_utilizaton", did you mean gpu_utilization\?/,
  );
  assert.throws(
    () => parseKthenaConfig({ metrics: [{ name: "gpu_utilization", target_value: 0 }] }),
    /metrics\[0\]\.target_value: Too small/,
  );
  assert.throws(
    () =>
      parseKthenaConfig({
        metrics: [{ name: "gpu_utilization", target_value: 80 }],
        target: { kind: "homogeneous", min_replicas: 3, max_replicas: 2 },
      }),
    /target\.min_replicas: min_replicas \(3\) must be <= max_replicas \(2\)/,
  );
});

void test("registry adapter: snake_case policy_config or an upstream policy_file relative to the config", () => {
  const dir = mkdtempSync(join(tmpdir(), "kthena-"));
  try {
    writeFileSync(join(dir, "seed003.yaml"), SEED_SMART);
    const context = {
      source: join(dir, "experiment.yaml"),
      pools: [{ name: "llm-model", role: "mixed" as const }],
    };
    const fromFile = createKthenaFromPolicyConfig({ policy_file: "seed003.yaml", defaults: "crd" }, context);
    assert.equal(fromFile.name, "kthena");
    const pool = kpool({
      name: "llm-model",
      replicas: uniform("llm-model", 4, { [GAUGES.gpuUtilization]: 100 }),
    });
    assert.deepEqual(fromFile.decide(kobservation(0, [pool]), fromFile.init(0)).decision.targets, {
      "llm-model": { desired: 5 },
    });
    const inline = createKthenaFromPolicyConfig(
      { metrics: [{ name: "gpu_utilization", target_value: 80 }] },
      context,
    );
    assert.equal(inline.interval_s, 15);
    assert.throws(
      () => createKthenaFromPolicyConfig({ policy_file: "seed003.yaml", tolerance_percent: 5 }, context),
      /with policy_file only defaults, upstream_compat and target may be set, not tolerance_percent/,
    );
    assert.throws(
      () => createKthenaFromPolicyConfig({ policy_file: "missing.yaml" }, context),
      /cannot read Kthena policy/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test("the built-in seed 003 example is the seed document's YAML, verbatim", () => {
  const seed = readFileSync(join(SEEDS, "003_c2b67cd57678d791.txt"), "utf8");
  const blocks = [...seed.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1]);
  assert.ok(
    blocks.includes(SEED_003_SMART_SCALING),
    "seed-example.ts must match the seed's smart-scaling YAML",
  );
});
