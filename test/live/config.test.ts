/**
 * The serve config and the live CLI commands: defaults, errors that name file:line and key (YAML
 * syntax, unknown keys with a suggestion, bad values, bad policies), `serve --check`, exit codes of
 * `serve`, `workers list`, `queue` and `status` (including an unreachable gateway), and the
 * manifests in deploy/ (CRDs parse, the controller's embedded serve config validates).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { loadServeConfig, parseServeConfigText } from "../../src/config/serve-schema.ts";
import { UsageError } from "../../src/errors.ts";
import { checkServeConfig } from "../../src/live/check.ts";
import { silentLogger } from "../../src/live/log.ts";
import { startServe } from "../../src/live/serve.ts";
import { formatSimpleTable, formatTimestamp } from "../../src/live/views.ts";
import { waitFor } from "./helpers.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "splitscale-serve-config-"));
void after(() => rmSync(scratch, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO, "bin", "splitscale.js"), ...args],
      { cwd: REPO, encoding: "utf8" },
      (error, stdout, stderr) => {
        resolve({
          code: error === null ? 0 : typeof error.code === "number" ? error.code : -1,
          stdout,
          stderr,
        });
      },
    );
  });
}

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    return error.message;
  }
  assert.fail("expected an error");
}

void describe("serve config", () => {
  void it("has a default for every key", () => {
    const { config } = parseServeConfigText("", "empty.yaml", scratch);
    assert.equal(config.listen.port, 8080);
    assert.equal(config.queue.max_size, 256);
    assert.equal(config.routing.strategy, "least_loaded");
    assert.deepEqual(Object.keys(config.pools), ["mixed"]);
    assert.equal(config.actuator.type, "process");
    assert.deepEqual(config.pools.mixed, { role: "mixed", min: 1, max: 4, startup_delay_s: 60 });
    assert.ok(
      config.actuator.type === "process" &&
        config.actuator.ports.from === 0 &&
        config.actuator.engine.time_scale === 1,
    );
    assert.equal(config.autoscaling.policy, "static");
  });

  void it("names file, line, column for YAML syntax errors", () => {
    const message = usageMessage(() =>
      parseServeConfigText("queue:\n  max_size: [1, 2\n", "bad.yaml", scratch),
    );
    assert.match(message, /^bad.yaml:\d+:\d+: YAML syntax error/);
  });

  void it("names file, line and key for unknown keys (with a suggestion) and bad values", () => {
    const text = [
      "listen:",
      "  port: 8080",
      "queue:",
      "  max_sise: 10",
      "routing:",
      "  max_concurrency_per_worker: -1",
      "pools:",
      "  mixed: { min: 3, max: 2 }",
      "actuator:",
      "  type: docker",
    ].join("\n");
    const message = usageMessage(() => parseServeConfigText(text, "serve.yaml", scratch));
    assert.match(message, /serve\.yaml:4: queue\.max_sise: unknown key \(did you mean "max_size"\?\)/);
    assert.match(message, /serve\.yaml:6: routing\.max_concurrency_per_worker: .*>=0/);
    assert.match(message, /serve\.yaml:8: pools\.mixed\.min: min must be <= max/);
    assert.match(message, /serve\.yaml:10: actuator\.type: /);
  });

  void it("refuses a top level that is not a mapping, and a missing file", () => {
    assert.match(
      usageMessage(() => parseServeConfigText("- a\n- b\n", "list.yaml", scratch)),
      /expected a mapping/,
    );
    assert.match(
      usageMessage(() => loadServeConfig(join(scratch, "absent.yaml"))),
      /cannot read serve config/,
    );
  });

  void it("checks the policy: unknown names and bad policy config are clear errors", () => {
    const unknown = parseServeConfigText("autoscaling: { policy: evera }\n", "p.yaml", scratch);
    assert.match(
      usageMessage(() => checkServeConfig(unknown)),
      /p\.yaml: autoscaling\.policy: unknown policy "evera".*Did you mean "everai"/,
    );
    const badConfig = parseServeConfigText(
      "autoscaling: { policy: everai, policy_config: { max_workers: -2 } }\n",
      "p.yaml",
      scratch,
    );
    assert.match(
      usageMessage(() => checkServeConfig(badConfig)),
      /p\.yaml: autoscaling\.policy_config\.max_workers: /,
    );
    const seed = write(
      "seed.yaml",
      readFileSync(join(REPO, "test/live/fixtures/seed-003-smart-scaling.yaml"), "utf8"),
    );
    const fromFile = parseServeConfigText(`autoscaling: { policy_file: ${seed} }\n`, "k.yaml", scratch);
    assert.match(checkServeConfig(fromFile), /policy kthena, every 15 s/);
    const hw = parseServeConfigText("model: llama2-70b\ngpu: b300\n", "hw.yaml", scratch);
    assert.throws(() => checkServeConfig(hw), /unknown GPU "b300"/);
  });
});

void describe("live CLI", () => {
  void it("serve: exit 2 with file:line: key for a bad config; --check prints a summary", async () => {
    const bad = write("bad.yaml", "queue:\n  timeout_s: soon\n");
    const result = await cli("serve", "--config", bad);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:2: queue\\.timeout_s: `),
    );
    const good = write(
      "good.yaml",
      "pools: { mixed: { min: 1, max: 3 } }\nautoscaling: { policy: everai, policy_config: { max_workers: 3 } }\n",
    );
    const check = await cli("serve", "--config", good, "--check");
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /good\.yaml: ok/);
    assert.match(check.stdout, /policy everai, every 2 s/);
  });

  void it("workers list, queue and status show a running gateway in seed 004's table style", async () => {
    const handle = await startServe(
      parseServeConfigText(
        [
          "listen: { port: 0 }",
          "pools: { mixed: { min: 1, max: 1 } }",
          "routing: { max_concurrency_per_worker: 1 }",
          "autoscaling: { enabled: false }",
          "actuator: { type: process, engine: { time_scale: 1 } }",
        ].join("\n"),
        "views.yaml",
        scratch,
      ),
      { log: silentLogger },
    );
    try {
      await waitFor("a ready worker", () => handle.registry.routable().length === 1, 20_000);
      // One long request holds the only worker; two more wait in the queue (WorkerBusy).
      const body = JSON.stringify({ model: "llama2-70b", prompt: "x", max_tokens: 2000 });
      const pending = [0, 1, 2].map(() =>
        fetch(`${handle.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        }).then(
          (r) => r.status,
          () => 0,
        ),
      );
      await waitFor("two queued", () => handle.gateway.queue.length === 2);
      const [workers, queue, status] = await Promise.all([
        cli("workers", "list", "--url", handle.url),
        cli("queue", "--url", handle.url),
        cli("status", "--url", handle.url, "--decisions", "3"),
      ]);
      assert.equal(workers.code, 0, workers.stderr);
      const workerLines = workers.stdout.trimEnd().split("\n");
      assert.match(workerLines[0]!, /^ID\s+STATUS\s+DETAIL_STATUS\s+CREATED_AT\s+DELETED_AT$/);
      assert.match(workerLines[1]!, /^-+( {2}-+){4}$/);
      assert.match(workerLines[2]!, /^mixed-1\s+RUNNING\s+BUSY\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4}/);
      assert.equal(queue.code, 0, queue.stderr);
      const queueLines = queue.stdout.trimEnd().split("\n");
      assert.match(queueLines[0]!, /^QUEUE_INDEX\s+CREATE_AT\s+QUEUE_REASON$/);
      assert.match(queueLines[2]!, /^\s+0 {2}\d{4}-.*WorkerBusy$/);
      assert.match(queueLines[3]!, /^\s+1 {2}\d{4}-.*WorkerBusy$/);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /queue\s+2\/256 \(WorkerBusy 2, NoWorker 0/);
      assert.match(status.stdout, /POOL\s+ROLE\s+MIN\s+MAX\s+DESIRED/);
      const json = await cli("workers", "list", "--json", "--url", handle.url);
      assert.equal(
        (JSON.parse(json.stdout) as { workers: { detail_status: string }[] }).workers[0]!.detail_status,
        "BUSY",
      );
      await handle.close();
      assert.ok(
        (await Promise.all(pending)).every((code) => code !== 200),
        "in-flight requests were cut by the shutdown, none hung",
      );
    } finally {
      await handle.close();
    }
  });

  void it("formats tables like tabulate's simple style", () => {
    assert.equal(
      formatSimpleTable(
        ["QUEUE_INDEX", "REASON"],
        [
          [0, "WorkerBusy"],
          [12, "NoWorker"],
        ],
      ),
      "QUEUE_INDEX  REASON\n-----------  ----------\n          0  WorkerBusy\n         12  NoWorker",
    );
    assert.match(formatTimestamp("2024-05-11T11:00:52.000Z"), /^2024-05-1\d \d\d:00:52[+-]\d{4}$/);
  });

  void it("workers list, queue, status: exit 3 with a clear message when the gateway cannot be reached", async () => {
    for (const args of [["workers", "list"], ["queue"], ["status"]]) {
      const result = await cli(...args, "--url", "http://127.0.0.1:9");
      assert.equal(result.code, 3, `${args.join(" ")}: ${result.stderr}`);
      assert.match(
        result.stderr,
        /cannot reach the gateway's admin API at http:\/\/127\.0\.0\.1:9\/admin\/.*ECONNREFUSED/,
      );
    }
    const help = await cli("workers", "list", "--help");
    assert.match(help.stdout, /Examples:/);
  });
});

void describe("deploy/ manifests", () => {
  const docs = (file: string): Record<string, unknown>[] =>
    parseAllDocuments(readFileSync(join(REPO, "deploy", file), "utf8")).map((doc) => {
      assert.deepEqual(doc.errors, [], file);
      return doc.toJS() as Record<string, unknown>;
    });

  void it("declares MatrixInfer's AutoscalingPolicy and AutoscalingPolicyBinding CRDs", () => {
    for (const [file, kind, plural] of [
      ["crds/autoscalingpolicies.yaml", "AutoscalingPolicy", "autoscalingpolicies"],
      ["crds/autoscalingpolicybindings.yaml", "AutoscalingPolicyBinding", "autoscalingpolicybindings"],
    ] as const) {
      const [crd] = docs(file) as [
        {
          apiVersion: string;
          kind: string;
          metadata: { name: string };
          spec: {
            group: string;
            scope: string;
            names: { kind: string; plural: string };
            versions: { name: string; served: boolean; storage: boolean; schema: unknown }[];
          };
        },
      ];
      assert.equal(crd.apiVersion, "apiextensions.k8s.io/v1");
      assert.equal(crd.kind, "CustomResourceDefinition");
      assert.equal(crd.metadata.name, `${plural}.registry.matrixinfer.ai`);
      assert.equal(crd.spec.names.kind, kind);
      assert.equal(crd.spec.scope, "Namespaced");
      assert.deepEqual(
        crd.spec.versions.map((v) => [v.name, v.served, v.storage]),
        [["v1alpha1", true, true]],
      );
    }
  });

  void it("ships a controller Deployment with RBAC for exactly what the actuator calls, and a valid serve config", () => {
    const objects = docs("controller.yaml") as {
      kind: string;
      metadata: { name: string };
      data?: Record<string, string>;
      rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    }[];
    assert.deepEqual(
      objects.map((o) => o.kind),
      ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service"],
    );
    const role = objects.find((o) => o.kind === "Role")!;
    const can = (resource: string, verb: string) =>
      role.rules!.some((r) => r.resources.includes(resource) && r.verbs.includes(verb));
    for (const [resource, verb] of <[string, string][]>[
      ["deployments/scale", "patch"],
      ["statefulsets/scale", "get"],
      ["modelinfers/scale", "patch"],
      ["autoscalingpolicybindings", "list"],
      ["autoscalingpolicies", "list"],
      ["pods", "list"],
      ["pods", "patch"],
      ["configmaps", "create"],
      ["configmaps", "update"],
    ])
      assert.ok(can(resource, verb), `${verb} ${resource}`);
    const serveYaml = objects.find((o) => o.kind === "ConfigMap")!.data!["serve.yaml"]!;
    const { config } = parseServeConfigText(serveYaml, "controller.yaml ConfigMap", scratch);
    assert.equal(config.actuator.type, "kubernetes");
    assert.match(
      checkServeConfig({ config, source: "controller.yaml", baseDir: scratch }),
      /AutoscalingPolicyBinding resources/,
    );
  });

  void it("has an example binding that loads as a kthena policy", () => {
    const objects = docs("examples/vllm-binding.yaml");
    assert.deepEqual(
      objects.map((o) => o.kind),
      ["Deployment", "AutoscalingPolicy", "AutoscalingPolicyBinding"],
    );
    const policyText = readFileSync(join(REPO, "deploy/examples/vllm-binding.yaml"), "utf8")
      .split("---")
      .slice(1)
      .join("---");
    const file = write("binding.yaml", policyText);
    const loaded = parseServeConfigText(`autoscaling: { policy_file: ${file} }\n`, "x.yaml", scratch);
    assert.match(checkServeConfig(loaded), /policy kthena/);
  });
});
