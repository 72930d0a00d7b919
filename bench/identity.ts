// Byte-identity check for changes that must not alter results (hot-path speed work, refactors):
// runs a fixed set of simulations covering every batching mode, scheduler family, start state and
// autoscaler path, and hashes what they write.
//   node --import tsx bench/identity.ts                      # print the hashes
//   node --import tsx bench/identity.ts --write FILE         # record them (before the change)
//   node --import tsx bench/identity.ts --check FILE         # compare (after it); exit 1 on a difference
// Left out of the hashes: wall-clock fields (`wall_s`), `config_hash` and config.resolved.yaml (both
// hold absolute paths, so they differ between checkouts), and charts (not written: --no-charts).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { referenceRun } from "./reference-runs.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(ROOT, "bin", "splitscale.js");

function upstream(run: string): string[] {
  const { config, trace } = referenceRun(run);
  return ["--splitwise-config", config, "--trace", trace];
}

/** name → `simulate` arguments. */
const CASES: Readonly<Record<string, readonly string[]>> = {
  "upstream-hh-replay": upstream("azure_replay_splitwise_hh_3p1t_mixedpool"),
  "upstream-baseline-replay": upstream("azure_replay_baseline_h4_tokenjsq"),
  "upstream-ha-example": upstream("ex_splitwise_ha_example"),
  "azure-conv-autoscale": ["--preset", "azure-conv-autoscale"],
  "azure-code-autoscale-kthena": ["--preset", "azure-code-autoscale", "--set", "autoscaling.policy=kthena"],
  "everai-burst": ["--preset", "everai-burst"],
  "splitwise-hh": ["--preset", "azure-conv-splitwise-hh"],
  "splitwise-ha": ["--preset", "azure-conv-splitwise-ha"],
  "baseline-splitwise-batching": ["--preset", "azure-conv-baseline-h100"],
  "baseline-orca": ["--preset", "azure-conv-baseline-h100", "--set", "start_state.type=orca"],
  "splitwise-hh-kv-token-jsq": [
    "--preset",
    "azure-conv-splitwise-hh",
    "--set",
    "scheduler.name=kv_token_jsq",
  ],
  "poisson-10m-config-100k": [
    "--config",
    join(ROOT, "bench", "configs", "poisson-10m-llama2-70b.yaml"),
    "--set",
    "workload.num_requests=100000",
  ],
};

/** Fields that differ from run to run or between checkouts without the results differing. */
const VOLATILE_FIELDS = new Set(["wall_s", "config_hash"]);

function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? filesUnder(path) : [path];
    });
}

/** The file's bytes with the volatile fields taken out (summary.json keys, summary.csv columns). */
function stableContent(path: string): string | Buffer {
  if (path.endsWith("summary.json") && !path.includes("upstream")) {
    const summary = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    for (const field of VOLATILE_FIELDS) delete summary[field];
    return JSON.stringify(summary);
  }
  if (path.endsWith("summary.csv") && !path.includes("upstream")) {
    const [header = "", row = ""] = readFileSync(path, "utf8").split("\n");
    const names = header.split(",");
    const keep = names.map((name) => !VOLATILE_FIELDS.has(name));
    const cells = row.split(",");
    if (cells.length !== names.length)
      throw new Error(`${path}: a quoted comma in the row; this check splits on commas only`);
    return [names.filter((_, i) => keep[i]).join(","), cells.filter((_, i) => keep[i]).join(",")].join("\n");
  }
  return readFileSync(path);
}

function hashRun(args: readonly string[]): Record<string, string> {
  const out = mkdtempSync(join(tmpdir(), "splitscale-identity-"));
  try {
    execFileSync(
      process.execPath,
      [BIN, "simulate", ...args, "--requests", "--no-progress", "--no-charts", "--json", "--out", out],
      { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], maxBuffer: 64 * 1024 * 1024 },
    );
    const hashes: Record<string, string> = {};
    for (const path of filesUnder(out)) {
      const name = relative(out, path);
      if (name === "config.resolved.yaml") continue;
      hashes[name] = createHash("sha256").update(stableContent(path)).digest("hex").slice(0, 16);
    }
    return hashes;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const { values } = parseArgs({ options: { write: { type: "string" }, check: { type: "string" } } });
const results: Record<string, Record<string, string>> = {};
for (const [name, args] of Object.entries(CASES)) {
  const started = performance.now();
  results[name] = hashRun(args);
  process.stderr.write(`${name}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

if (values.write !== undefined) {
  writeFileSync(values.write, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`wrote ${values.write}\n`);
} else if (values.check !== undefined) {
  const expected = JSON.parse(readFileSync(values.check, "utf8")) as typeof results;
  const differences: string[] = [];
  for (const name of new Set([...Object.keys(expected), ...Object.keys(results)])) {
    const before = expected[name] ?? {};
    const after = results[name] ?? {};
    for (const file of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (before[file] !== after[file])
        differences.push(`${name}/${file}: ${before[file] ?? "-"} -> ${after[file] ?? "-"}`);
    }
  }
  if (differences.length > 0) {
    process.stdout.write(`${differences.length} output(s) differ:\n${differences.join("\n")}\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write(`all ${Object.keys(results).length} runs byte-identical to ${values.check}\n`);
  }
} else {
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}
