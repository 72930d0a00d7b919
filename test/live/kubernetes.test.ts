/**
 * The kubernetes actuator against the in-repo fake API server (fake-kube.ts), through the real
 * @kubernetes/client-node 1.4: scale subresource reads and merge-patch writes (Deployment,
 * StatefulSet, and MatrixInfer's ModelInfer as a custom resource), AutoscalingPolicy[Binding] custom
 * resources (seed 003's YAML, verbatim), pods found by the scale selector and scraped, victims
 * marked with a pod-deletion cost, and policy state that survives a controller restart (ConfigMap).
 * Policy time runs 60x (autoscaling.time_scale), so Kthena's 15 s tick is 0.25 s and its 3 min
 * scale-down window 3 s.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { parseServeConfigText } from "../../src/config/serve-schema.ts";
import { decodeState, encodeState, DELETION_COST_ANNOTATION } from "../../src/live/actuators/kubernetes.ts";
import { memoryLogger } from "../../src/live/log.ts";
import { startServe, type ServeHandle } from "../../src/live/serve.ts";
import { FakeKube } from "./fake-kube.ts";

const SEED_YAML = readFileSync(new URL("./fixtures/seed-003-smart-scaling.yaml", import.meta.url), "utf8");

/** Metrics pages the fake pods serve: one server per pod index, all reading `gpu` now. */
class MetricsStubs {
  gpu = 0;
  running = 0;
  broken = new Set<number>();
  readonly servers: Server[] = [];
  readonly ports: number[] = [];

  async start(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const server = createServer((req, res) => {
        if (this.broken.has(i)) {
          res.writeHead(200, { "content-type": "text/plain" });
          res.end("this is {{ not prometheus\n");
          return;
        }
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
        res.end(
          [
            `vllm:num_requests_running{model_name="llm"} ${this.running}`,
            `vllm:num_requests_waiting{model_name="llm"} 0`,
            `vllm:kv_cache_usage_perc{model_name="llm"} 0.1`,
            `splitscale:gpu_utilization_perc{model_name="llm"} ${this.gpu}`,
            "",
          ].join("\n"),
        );
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      this.servers.push(server);
      this.ports.push((server.address() as AddressInfo).port);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
  }
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function k8sConfig(fake: FakeKube, extra = ""): string {
  return `
listen: { port: 0 }
autoscaling: { time_scale: 60, scrape_interval_s: 0.1, metrics_staleness_s: 2 }
actuator:
  type: kubernetes
  server: ${fake.url}
  token: test-token
  resync_s: 1
${extra}`;
}

void describe("kubernetes actuator (fake API server)", () => {
  const stubs = new MetricsStubs();
  void before(async () => {
    await stubs.start(8);
  });
  void after(async () => {
    await stubs.stop();
  });

  void it("reads seed 003's binding, scales the ModelInfer through its scale subresource, and resumes its state after a restart", async () => {
    const fake = new FakeKube();
    await fake.start();
    const handles: ServeHandle[] = [];
    try {
      fake.addWorkload({
        kind: "ModelInfer",
        name: "llm-model",
        replicas: 1,
        labels: { app: "llm-model" },
        podAnnotations: (i) => ({ "splitscale.io/port": String(stubs.ports[i % stubs.ports.length]) }),
        podsReady: true,
      });
      for (const doc of parseAllDocuments(SEED_YAML) as { toJS(): Record<string, unknown> }[]) {
        const object = doc.toJS();
        fake.addCustomObject(
          "registry.matrixinfer.ai",
          "v1alpha1",
          object.kind === "AutoscalingPolicy" ? "autoscalingpolicies" : "autoscalingpolicybindings",
          object,
        );
      }
      // The other configured group has no CRDs installed: 404s must be skipped quietly.
      fake.missingPlurals.add("workload.serving.volcano.sh/autoscalingpolicies");
      fake.missingPlurals.add("workload.serving.volcano.sh/autoscalingpolicybindings");
      const workload = fake.workloads.get("ModelInfer/llm-model")!;
      const logA = memoryLogger();
      const start = async (log: ReturnType<typeof memoryLogger>): Promise<ServeHandle> => {
        const handle = await startServe(parseServeConfigText(k8sConfig(fake), "k8s.yaml", process.cwd()), {
          log,
        });
        handles.push(handle);
        return handle;
      };

      // 1. The binding's minReplicas (2) is restored through PATCH .../modelinfers/llm-model/scale.
      stubs.gpu = 50;
      const a = await start(logA);
      assert.deepEqual(a.controller?.unitNames(), ["binding/smart-scaling-binding"]);
      await waitFor("scale to minReplicas 2", () => workload.replicas === 2);
      const patch = fake.writes("/modelinfers/llm-model/scale")[0]!;
      assert.equal(patch.method, "PATCH");
      assert.equal(
        patch.path,
        "/apis/workload.matrixinfer.ai/v1alpha1/namespaces/default/modelinfers/llm-model/scale",
      );
      assert.equal(patch.contentType, "application/merge-patch+json");
      assert.deepEqual(patch.body, { spec: { replicas: 2 } });
      assert.ok(
        fake.requests.some((r) => r.path.endsWith("/autoscalingpolicybindings") && r.method === "GET"),
        "bindings listed",
      );
      const podList = fake.requests.find((r) => r.path === "/api/v1/namespaces/default/pods");
      assert.equal(
        podList?.query.labelSelector,
        "app=llm-model",
        "pods found by the scale subresource's selector",
      );
      await waitFor("both pods in the registry, ready", () => a.registry.routable().length === 2);

      // 2. Busy GPUs (100 % against the 80 % target) scale up: panic mode (3/2 >= 150 %).
      stubs.gpu = 100;
      await waitFor("scale up to 3", () => workload.replicas >= 3);
      const upTo = workload.replicas;
      await waitFor("state saved in the ConfigMap", () => fake.configMaps.has("splitscale-autoscaler-state"));
      const saved = decodeState(fake.configMaps.get("splitscale-autoscaler-state")!.data["state.json"]!) as {
        units: Record<string, { state: unknown }>;
      };
      assert.ok(saved.units["binding/smart-scaling-binding"] !== undefined);

      // 3. Idle again, and the controller restarts at once: with its saved state, the 3-minute
      //    scale-down stabilization window (3 s here) still remembers the high recommendations.
      stubs.gpu = 0;
      await a.close();
      const logB = memoryLogger();
      const b = await start(logB);
      assert.ok(
        logB.lines.some((line) => line.includes("resumed from saved state")),
        logB.lines.join("\n"),
      );
      const decisionsBefore = b.controller!.decisionsMade;
      await waitFor(
        "a few decisions of the restarted controller",
        () => b.controller!.decisionsMade >= decisionsBefore + 3,
      );
      assert.equal(workload.replicas, upTo, "the restarted controller holds within the stabilization window");
      await b.close();

      // 4. Without the saved state, a restarted controller forgets the window and scales straight down.
      fake.configMaps.delete("splitscale-autoscaler-state");
      const logC = memoryLogger();
      const c = await start(logC);
      assert.ok(!logC.lines.some((line) => line.includes("resumed from saved state")));
      await waitFor("scale down to minReplicas", () => workload.replicas === 2, 3000);
      await c.close();
    } finally {
      for (const handle of handles) await handle.close();
      await fake.stop();
    }
  });

  void it("scales Deployments and StatefulSets from config targets, marks victims, and survives a broken pod and missing targets", async () => {
    const fake = new FakeKube();
    await fake.start();
    let handle: ServeHandle | undefined;
    try {
      fake.addWorkload({
        kind: "Deployment",
        name: "vllm",
        replicas: 3,
        labels: { app: "vllm" },
        podAnnotations: (i) => ({
          "prometheus.io/port": String(stubs.ports[i % stubs.ports.length]),
          "splitscale.io/port": String(stubs.ports[i % stubs.ports.length]),
        }),
        podsReady: true,
      });
      fake.addWorkload({
        kind: "StatefulSet",
        name: "sglang",
        replicas: 1,
        labels: { app: "sglang" },
        podAnnotations: () => ({}),
        podsReady: false,
      });
      stubs.gpu = 0;
      stubs.running = 0;
      stubs.broken.add(1); // the second vllm pod serves garbage
      const log = memoryLogger();
      const config = k8sConfig(
        fake,
        `  bindings: false
  targets:
    vllm: { kind: Deployment, name: vllm }
    sglang: { kind: StatefulSet, name: sglang }
    ghost: { kind: Deployment, name: does-not-exist }
pools:
  vllm: { min: 1, max: 4 }
  sglang: { min: 2, max: 3 }
  ghost: { min: 1, max: 2 }
`,
      ).replace(
        "autoscaling: {",
        "autoscaling: { policy: everai, policy_config: { min_workers: 1, max_workers: 4, max_idle_time: 0, interval_s: 15 },",
      );
      handle = await startServe(parseServeConfigText(config, "targets.yaml", process.cwd()), { log });
      const vllm = fake.workloads.get("Deployment/vllm")!;
      const sglang = fake.workloads.get("StatefulSet/sglang")!;
      // EverAI removes idle workers down to min_workers; the pool min 2 holds sglang at 2. The vllm pod
      // with the garbage page has missing metrics, so it counts as Busy and is never removed as idle.
      await waitFor("sglang raised to its pool minimum", () => sglang.replicas === 2);
      await waitFor("vllm scaled down to 2", () => vllm.replicas === 2);
      assert.ok(
        fake.podsOf("Deployment/vllm").some((pod) => pod.metadata.name === "vllm-1"),
        "the unscraped pod stays",
      );
      const stsPatch = fake.writes("/statefulsets/sglang/scale")[0]!;
      assert.equal(stsPatch.contentType, "application/merge-patch+json");
      assert.deepEqual(stsPatch.body, { spec: { replicas: 2 } });
      const marked = fake.writes("/api/v1/namespaces/default/pods/");
      assert.ok(marked.length >= 1, "victims marked before the scale-down");
      assert.deepEqual(marked[0]!.body, {
        metadata: { annotations: { [DELETION_COST_ANNOTATION]: "-1000" } },
      });
      // The pods the policy named are the ones the ReplicaSet removed.
      const victims = new Set(marked.map((r) => r.path.split("/").pop()));
      for (const pod of fake.podsOf("Deployment/vllm")) assert.ok(!victims.has(pod.metadata.name));
      // Not-ready StatefulSet pods are starting; the unknown Deployment is reported, never fatal.
      assert.ok(handle.registry.live("sglang").every((w) => w.phase === "starting"));
      assert.ok(
        log.lines.some((line) => /cannot read Deployment\/does-not-exist: HTTP 404/.test(line)),
        log.lines.join("\n"),
      );
      // The garbage metrics page was reported for that pod only.
      await waitFor("the broken page reported", () =>
        log.lines.some((line) => line.includes("malformed metrics page")),
      );
    } finally {
      stubs.broken.clear();
      await handle?.close();
      await fake.stop();
    }
  });

  void it("skips invalid or dangling bindings with a clear log line", async () => {
    const fake = new FakeKube();
    await fake.start();
    let handle: ServeHandle | undefined;
    try {
      fake.addWorkload({
        kind: "Deployment",
        name: "a",
        replicas: 1,
        labels: { app: "a" },
        podAnnotations: () => ({}),
        podsReady: true,
      });
      fake.addCustomObject("registry.matrixinfer.ai", "v1alpha1", "autoscalingpolicies", {
        apiVersion: "registry.matrixinfer.ai/v1alpha1",
        kind: "AutoscalingPolicy",
        metadata: { name: "bad" },
        spec: { tolerancePercent: "lots" },
      });
      fake.addCustomObject("registry.matrixinfer.ai", "v1alpha1", "autoscalingpolicybindings", {
        apiVersion: "registry.matrixinfer.ai/v1alpha1",
        kind: "AutoscalingPolicyBinding",
        metadata: { name: "uses-bad" },
        spec: {
          policyRef: { name: "bad" },
          scalingConfiguration: {
            minReplicas: 1,
            maxReplicas: 2,
            target: { targetRef: { kind: "Deployment", apiVersion: "apps/v1", name: "a" } },
            metricTargets: { concurrent_requests: 5 },
          },
        },
      });
      fake.addCustomObject("registry.matrixinfer.ai", "v1alpha1", "autoscalingpolicybindings", {
        apiVersion: "registry.matrixinfer.ai/v1alpha1",
        kind: "AutoscalingPolicyBinding",
        metadata: { name: "dangling" },
        spec: {
          policyRef: { name: "nope" },
          scalingConfiguration: {
            minReplicas: 1,
            maxReplicas: 2,
            target: { targetRef: { name: "a" } },
            metricTargets: { cpu: 5 },
          },
        },
      });
      fake.missingPlurals.add("workload.serving.volcano.sh/autoscalingpolicies");
      fake.missingPlurals.add("workload.serving.volcano.sh/autoscalingpolicybindings");
      const log = memoryLogger();
      handle = await startServe(parseServeConfigText(k8sConfig(fake), "k8s.yaml", process.cwd()), { log });
      assert.deepEqual(handle.controller?.unitNames(), []);
      const text = log.lines.join("\n");
      assert.match(text, /binding\/uses-bad is invalid; skipped: .*tolerancePercent/);
      assert.match(text, /binding dangling references AutoscalingPolicy nope, which does not exist; skipped/);
      assert.equal(fake.writes().length, 0, "nothing scaled");
    } finally {
      await handle?.close();
      await fake.stop();
    }
  });

  void it("encodes policy state losslessly (infinities included)", () => {
    const state = { a: Infinity, b: [-Infinity, 1, Number.NaN], c: { d: "x" } };
    const back = decodeState(encodeState(state)) as typeof state;
    assert.equal(back.a, Infinity);
    assert.equal(back.b[0], -Infinity);
    assert.ok(Number.isNaN(back.b[2]));
    assert.deepEqual(back.c, { d: "x" });
  });
});
