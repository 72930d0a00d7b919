/**
 * Live-mode benchmarks (node --import tsx bench/gateway.ts [--quick] [--out FILE]):
 *
 * 1. Gateway overhead: an open-loop client sends JSON completions at a fixed rate (default
 *    1,000 requests/s) on loopback, alternately straight to an emulated engine and through
 *    `splitscale serve` (a child process with the process actuator and that one engine), and
 *    reports latency percentiles of both and the difference (the gateway's added latency).
 *    The engine runs at time scale 1000 with max_tokens 1, so it answers in well under a
 *    millisecond and the gateway's share is visible.
 * 2. Emulator fidelity: one seeded Poisson workload (llama2-70b on 8 x H100) through the simulator
 *    and, request by request at the same arrival times, through an emulated engine (a child
 *    process, streaming); TTFT and TBT distributions side by side. The engine runs `--time-scale`
 *    times faster (default 2) and client-side times are scaled back.
 *
 * Prints Markdown for BENCHMARKS.md and, with --out, writes the numbers as JSON. With --dist DIR the
 * gateway and engines run the compiled JavaScript (DIR = the output of `npm run build`), not tsx.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { validateConfig } from "../src/config/config.ts";
import type { RequestRecord } from "../src/metrics/types.ts";
import { runSimulation } from "../src/simulate/run.ts";
import { cliCommand, engineCommand, openLoop, ROOT, spawnAndWaitUrl, stop, summary } from "./live-load.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const outIndex = args.indexOf("--out");
const outPath = outIndex >= 0 ? args[outIndex + 1] : undefined;
const option = (name: string, fallback: number): number => {
  const index = args.indexOf(name);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};
const RATE = option("--rate", 1000);
const PHASE_S = option("--phase-s", quick ? 3 : 10);
const FIDELITY_S = option("--fidelity-s", quick ? 30 : 120);
const FIDELITY_RATE = option("--fidelity-rate", 3);
const FIDELITY_SCALE = option("--time-scale", 2);

// --dist DIR: run the compiled JavaScript (`npm run build`, DIR = its dist/) instead of the sources
// through tsx, as an installed package does.
const distIndex = args.indexOf("--dist");
const DIST = distIndex >= 0 ? args[distIndex + 1] : undefined;
// --semi-space MB: V8's young generation for the gateway and engines (fewer scavenge pauses in the tail).
const SEMI_SPACE = option("--semi-space", 0);
const CHILD_ENV =
  SEMI_SPACE > 0
    ? {
        ...process.env,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --max-semi-space-size=${SEMI_SPACE}`.trim(),
      }
    : process.env;
const ENGINE = engineCommand(DIST);
const CLI = cliCommand(DIST);

// ---- 1. gateway overhead ------------------------------------------------------------------------

const BODY = JSON.stringify({ model: "llama2-70b", prompt: "hello", max_tokens: 1 });

async function gatewayOverhead() {
  const scratch = mkdtempSync(join(tmpdir(), "splitscale-bench-"));
  const config = join(scratch, "serve.yaml");
  writeFileSync(
    config,
    [
      "listen: { port: 0 }",
      "log_level: warn",
      "pools: { mixed: { min: 1, max: 1, startup_delay_s: 1 } }",
      "routing: { max_concurrency_per_worker: 64 }",
      "queue: { max_size: 100000 }",
      "autoscaling: { enabled: false }",
      "actuator: { type: process, engine: { time_scale: 1000 } }",
    ].join("\n"),
  );
  const {
    child,
    url: gatewayUrl,
    stderr,
  } = await spawnAndWaitUrl([...CLI, "serve", "--config", config], CHILD_ENV);
  try {
    let engineUrl: string | undefined;
    for (let i = 0; i < 200 && engineUrl === undefined; i++) {
      const response = await request(`${gatewayUrl}/admin/workers`);
      const body = (await response.body.json()) as { workers: { phase: string; url: string | null }[] };
      engineUrl = body.workers.find((w) => w.phase === "ready")?.url ?? undefined;
      if (engineUrl === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (engineUrl === undefined) throw new Error("the gateway's worker never became ready");
    const agent = new Agent({ connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
    // Warm up both paths at the full rate (JIT, connection pools, heap sizes): steady state is measured.
    await openLoop(agent, engineUrl, RATE, 3, BODY);
    await openLoop(agent, gatewayUrl, RATE, 3, BODY);
    const runs: { target: string; latencies_ms: number[]; errors: number; achieved_rps: number }[] = [];
    for (const target of ["direct", "gateway", "direct", "gateway"]) {
      const result = await openLoop(agent, target === "direct" ? engineUrl : gatewayUrl, RATE, PHASE_S, BODY);
      runs.push({ target, ...result });
      const phase = summary(result.latencies_ms);
      const logged = stderr().trim();
      if (logged !== "") process.stderr.write(`  gateway log:\n${logged.split("\n").slice(-5).join("\n")}\n`);
      process.stderr.write(
        `  ${target}: p50 ${phase.p50.toFixed(2)} p99 ${phase.p99.toFixed(2)} max ${phase.max.toFixed(1)} ms, ${Math.round(result.achieved_rps)} req/s, ${result.errors} errors\n`,
      );
    }
    await agent.close();
    const pick = (target: string) => runs.filter((r) => r.target === target);
    const direct = summary(pick("direct").flatMap((r) => r.latencies_ms));
    const gateway = summary(pick("gateway").flatMap((r) => r.latencies_ms));
    return {
      rate_per_s: RATE,
      seconds_per_phase: PHASE_S,
      achieved_rps: Object.fromEntries(runs.map((r, i) => [`${r.target}#${i}`, Math.round(r.achieved_rps)])),
      errors: runs.reduce((sum, r) => sum + r.errors, 0),
      direct_ms: direct,
      gateway_ms: gateway,
      added_ms: {
        p50: gateway.p50 - direct.p50,
        p90: gateway.p90 - direct.p90,
        p99: gateway.p99 - direct.p99,
        mean: gateway.mean - direct.mean,
      },
    };
  } finally {
    await stop(child);
    rmSync(scratch, { recursive: true, force: true });
  }
}

// ---- 2. emulator fidelity -----------------------------------------------------------------------

function simulateWorkload(): RequestRecord[] {
  const config = validateConfig(
    {
      model: "llama2-70b",
      cluster: { servers: [{ sku: "dgx-h100", count: 1 }] },
      start_state: { type: "baseline", instance: { tensor_parallelism: 8 } },
      scheduler: { name: "jsq" },
      performance_model: { type: "db" },
      workload: {
        type: "generator",
        seed: 11,
        arrival: { process: "poisson", rate_per_s: FIDELITY_RATE },
        lengths: {
          prompt: { dist: "lognormal", mean: 1000, cv: 0.8 },
          output: { dist: "lognormal", mean: 150, cv: 0.8 },
        },
        duration_s: FIDELITY_S,
      },
    },
    "bench/gateway.ts",
  );
  const records: RequestRecord[] = [];
  runSimulation(
    { config, baseDir: ROOT, source: "bench/gateway.ts" },
    { onRecord: (record) => records.push(record) },
  );
  return records.sort((a, b) => a.arrival_s - b.arrival_s);
}

async function replay(
  url: string,
  records: readonly RequestRecord[],
  scale: number,
): Promise<{ ttft_s: number[]; tbt_s: number[]; failed: number }> {
  const agent = new Agent({ connections: 512, pipelining: 1 });
  const ttft: number[] = [];
  const tbt: number[] = [];
  let failed = 0;
  const start = performance.now();
  const first = records[0]?.arrival_s ?? 0;
  const tasks = records.map(async (record) => {
    const due = start + ((record.arrival_s - first) / scale) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const t0 = performance.now();
    try {
      const response = await request(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "llama2-70b",
          prompt: "x",
          prompt_tokens: record.prompt_tokens,
          max_tokens: record.output_tokens,
          ignore_eos: true,
          stream: true,
        }),
        dispatcher: agent,
      });
      let firstAt: number | undefined;
      let lastAt = 0;
      let tokens = 0;
      let partial = "";
      for await (const chunk of response.body) {
        const now = performance.now();
        partial += (chunk as Buffer).toString("utf8");
        const events = partial.split("\n\n");
        partial = events.pop() ?? "";
        for (const event of events) {
          if (!event.startsWith("data: {")) continue;
          tokens++;
          firstAt ??= now;
          lastAt = now;
        }
      }
      if (firstAt === undefined || tokens !== record.output_tokens) {
        failed++;
        return;
      }
      ttft.push(((firstAt - t0) / 1000) * scale);
      if (tokens > 1) tbt.push((((lastAt - firstAt) / 1000) * scale) / (tokens - 1));
    } catch {
      failed++;
    }
  });
  await Promise.all(tasks);
  await agent.close();
  return { ttft_s: ttft, tbt_s: tbt, failed };
}

async function fidelity() {
  const records = simulateWorkload();
  const { child, url } = await spawnAndWaitUrl(
    [...ENGINE, "--port", "0", "--time-scale", String(FIDELITY_SCALE), "--log-level", "warn"],
    CHILD_ENV,
  );
  try {
    const emulated = await replay(url, records, FIDELITY_SCALE);
    const simTbt = records.filter((r) => r.output_tokens > 1).map((r) => r.tbt_s);
    return {
      requests: records.length,
      duration_s: FIDELITY_S,
      rate_per_s: FIDELITY_RATE,
      time_scale: FIDELITY_SCALE,
      failed: emulated.failed,
      ttft_s: { simulator: summary(records.map((r) => r.ttft_s)), emulator: summary(emulated.ttft_s) },
      tbt_s: { simulator: summary(simTbt), emulator: summary(emulated.tbt_s) },
    };
  } finally {
    await stop(child);
  }
}

// ---- report -------------------------------------------------------------------------------------

const fmt = (value: number, digits = 2): string => (Number.isFinite(value) ? value.toFixed(digits) : "-");

const machine = `${cpus().length} x ${cpus()[0]?.model ?? "?"}, Node ${process.version}`;
const loadAtStart = loadavg()
  .map((v) => v.toFixed(1))
  .join(" / ");
process.stderr.write(`machine: ${machine}, load ${loadAtStart}\n`);
const overhead = args.includes("--no-overhead")
  ? undefined
  : (process.stderr.write(`gateway overhead: ${RATE} req/s, ${PHASE_S} s per phase ...\n`),
    await gatewayOverhead());
const fid = args.includes("--no-fidelity")
  ? undefined
  : (process.stderr.write(
      `fidelity: ${FIDELITY_S} s of Poisson ${FIDELITY_RATE} req/s at time scale ${FIDELITY_SCALE} ...\n`,
    ),
    await fidelity());

const lines = [`Machine: ${machine}. Command: \`node --import tsx bench/gateway.ts ${args.join(" ")}\`.`];
if (overhead !== undefined)
  lines.push(
    "",
    `Gateway overhead, open loop at ${overhead.rate_per_s} req/s on loopback (JSON completions, max_tokens 1, engine at time scale 1000, at most 64 in flight per worker), ${overhead.seconds_per_phase} s per phase, phases alternated direct/gateway twice; ${overhead.errors} errors; achieved rates ${Object.values(overhead.achieved_rps).join(", ")} req/s:`,
    "",
    "| path | p50 ms | p90 ms | p99 ms | mean ms | max ms |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    `| engine directly | ${fmt(overhead.direct_ms.p50)} | ${fmt(overhead.direct_ms.p90)} | ${fmt(overhead.direct_ms.p99)} | ${fmt(overhead.direct_ms.mean)} | ${fmt(overhead.direct_ms.max)} |`,
    `| through the gateway | ${fmt(overhead.gateway_ms.p50)} | ${fmt(overhead.gateway_ms.p90)} | ${fmt(overhead.gateway_ms.p99)} | ${fmt(overhead.gateway_ms.mean)} | ${fmt(overhead.gateway_ms.max)} |`,
    `| **added by the gateway** | **${fmt(overhead.added_ms.p50)}** | ${fmt(overhead.added_ms.p90)} | **${fmt(overhead.added_ms.p99)}** | ${fmt(overhead.added_ms.mean)} | |`,
  );
if (fid !== undefined)
  lines.push(
    "",
    `Emulator fidelity: ${fid.requests} requests (Poisson ${fid.rate_per_s} req/s for ${fid.duration_s} s, lognormal prompts mean 1000 / outputs mean 150 tokens, seed 11), llama2-70b on 8 x H100 (db performance model), one replica; the emulated engine ran at time scale ${fid.time_scale} and was measured by a streaming client (times scaled back); ${fid.failed} failed:`,
    "",
    "| metric | source | mean | p50 | p90 | p99 |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
    ...(["ttft_s", "tbt_s"] as const).flatMap((metric) =>
      (["simulator", "emulator"] as const).map((source) => {
        const s = fid[metric][source];
        const ms = (v: number) => fmt(v * 1000, 1);
        return `| ${metric === "ttft_s" ? "TTFT ms" : "TBT ms"} | ${source} | ${ms(s.mean)} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} |`;
      }),
    ),
  );
const load = loadavg()
  .map((v) => v.toFixed(1))
  .join(" / ");
lines[0] = `${lines[0]} Load average (1/5/15 min) at the end: ${load} (load started at ${loadAtStart}).`;
process.stdout.write(`${lines.join("\n")}\n`);
if (outPath !== undefined)
  writeFileSync(outPath, `${JSON.stringify({ machine, overhead, fidelity: fid }, null, 2)}\n`);
