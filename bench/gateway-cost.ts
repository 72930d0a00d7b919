/**
 * CPU time and heap allocation per proxied request, for the gateway and the emulated engine
 * (node --import tsx bench/gateway-cost.ts [--rate 1000] [--seconds 10] [--stream N] [--target both]).
 *
 * Latency tails on a shared 2-core machine mostly measure the neighbours; these two numbers do not.
 * The same setup as bench/gateway.ts (`splitscale serve`, process actuator, one emulated engine at
 * time scale 1000) is driven open loop at a fixed rate, first straight to the engine, then through
 * the gateway, each after a warm-up at the same rate. Per phase and process:
 *
 * - CPU µs per request: utime + stime from /proc/<pid>/stat over the phase, divided by requests
 *   (system time is mostly the loopback TCP stack: on loopback the sender's write runs the receive
 *   path too).
 * - KB allocated per request: V8's `--trace-gc-nvp` reports the bytes allocated since the previous
 *   GC at every GC; summed over the GCs inside the phase (first one excluded) and divided by the
 *   requests sent between the first and the last of them (the load is a fixed rate).
 * - young-generation GCs per second and their mean and longest pause.
 *
 * --stream N sends SSE requests of N tokens instead of JSON ones with max_tokens 1. --gateway-flags
 * "..." adds Node flags to the gateway (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"),
 * --engine-node-options "..." to the engine's NODE_OPTIONS (e.g. "--perf-basic-prof").
 */
import { readFileSync } from "node:fs";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { CLI, openLoop, spawnAndWaitUrl, stop, summary } from "./live-load.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const index = args.indexOf(name);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};
const text = (name: string, fallback: string): string => {
  const index = args.indexOf(name);
  return index >= 0 ? (args[index + 1] ?? fallback) : fallback;
};
const RATE = option("--rate", 1000);
const SECONDS = option("--seconds", 10);
const STREAM = option("--stream", 0);
const TARGET = text("--target", "both");
const GATEWAY_FLAGS = text("--gateway-flags", "");
const ENGINE_OPTIONS = text("--engine-node-options", "");
const TICK_US = 1e6 / 100; // USER_HZ
// V8 flags are not allowed in NODE_OPTIONS, but --trace-gc-nvp can be set at run time by a module
// preloaded before the process allocates much (inline, so NODE_OPTIONS needs no file path).
const TRACE_GC =
  "--import=data:text/javascript,import{setFlagsFromString}from'node:v8';setFlagsFromString('--trace-gc-nvp')";

const BODY = JSON.stringify(
  STREAM > 0
    ? { model: "llama2-70b", prompt: "hello", max_tokens: STREAM, stream: true }
    : { model: "llama2-70b", prompt: "hello", max_tokens: 1 },
);

/** User and system CPU ticks of a process so far. */
function cpuTicks(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]), system: Number(fields[12]) }; // utime, stime (fields 14 and 15)
}

/** CPU µs per request between two readings, as "total (user + system)". */
function perRequest(
  from: { user: number; system: number },
  to: { user: number; system: number },
  requests: number,
) {
  const user = ((to.user - from.user) * TICK_US) / requests;
  const system = ((to.system - from.system) * TICK_US) / requests;
  return {
    total: user + system,
    text: `${(user + system).toFixed(0)} (${user.toFixed(0)} + ${system.toFixed(0)})`,
  };
}

interface GcLine {
  readonly atMs: number;
  readonly scavenge: boolean;
  readonly pauseMs: number;
  readonly allocated: number;
}

/** Accumulates `--trace-gc-nvp` lines from a stream of text. */
class GcTrace {
  readonly lines: GcLine[] = [];
  private partial = "";
  feed(chunk: string): void {
    this.partial += chunk;
    const parts = this.partial.split("\n");
    this.partial = parts.pop() ?? "";
    for (const line of parts) {
      const match = /\s([\d.]+) ms: pause=([\d.]+) .*?gc=(\w+) .* allocated=(\d+)/.exec(line);
      if (match === null) continue;
      this.lines.push({
        atMs: Number(match[1]),
        pauseMs: Number(match[2]),
        scavenge: match[3] === "s",
        allocated: Number(match[4]),
      });
    }
  }
}

/** Reads a growing file (the engine's log) into a GcTrace. */
function followFile(path: string, trace: GcTrace): () => void {
  let offset = 0;
  const poll = (): void => {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch {
      return;
    }
    if (data.length > offset) trace.feed(data.subarray(offset).toString("utf8"));
    offset = data.length;
  };
  return poll;
}

function phaseGc(trace: GcTrace, from: number, to: number, rate: number) {
  const inside = trace.lines.slice(from, to);
  const scavenges = inside.filter((line) => line.scavenge);
  let bytesPerRequest = NaN;
  if (inside.length >= 3) {
    const bytes = inside.slice(1).reduce((sum, line) => sum + line.allocated, 0);
    const span_s = (inside[inside.length - 1]!.atMs - inside[0]!.atMs) / 1000;
    bytesPerRequest = bytes / (span_s * rate);
  }
  const pauses = scavenges.map((line) => line.pauseMs);
  return {
    kbPerRequest: bytesPerRequest / 1024,
    scavenges: scavenges.length,
    meanPauseMs: pauses.reduce((a, b) => a + b, 0) / Math.max(1, pauses.length),
    maxPauseMs: Math.max(0, ...pauses),
    fullGcs: inside.length - scavenges.length,
  };
}

const scratch = mkdtempSync(join(tmpdir(), "splitscale-cost-"));
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
    "actuator:",
    "  type: process",
    "  engine: { time_scale: 1000 }",
    `  log_dir: ${JSON.stringify(scratch)}`,
    `  env: { NODE_OPTIONS: ${JSON.stringify(`${TRACE_GC} ${ENGINE_OPTIONS}`.trim())} }`,
  ].join("\n"),
);
const gatewayTrace = new GcTrace();
const [node, ...cli] = CLI;
const { child, url: gatewayUrl } = await spawnAndWaitUrl(
  [node!, ...GATEWAY_FLAGS.split(" ").filter((flag) => flag !== ""), ...cli, "serve", "--config", config],
  { ...process.env, NODE_OPTIONS: TRACE_GC },
);
child.stdout!.on("data", (data: Buffer) => gatewayTrace.feed(data.toString("utf8")));

const rows: string[] = [];
try {
  let engine: { url: string; pid: number; id: string } | undefined;
  for (let i = 0; i < 200 && engine === undefined; i++) {
    const response = await request(`${gatewayUrl}/admin/workers`);
    const body = (await response.body.json()) as {
      workers: { id: string; phase: string; url: string | null; pid: number | null }[];
    };
    const ready = body.workers.find((w) => w.phase === "ready");
    if (ready?.url != null && ready.pid !== null) engine = { url: ready.url, pid: ready.pid, id: ready.id };
    else await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (engine === undefined) throw new Error("the gateway's worker never became ready");
  const engineTrace = new GcTrace();
  const pollEngine = followFile(join(scratch, `${engine.id}.log`), engineTrace);
  const agent = new Agent({ connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
  const targets = TARGET === "both" ? ["direct", "gateway"] : [TARGET];
  process.stderr.write(
    `load ${loadavg()
      .map((v) => v.toFixed(2))
      .join(
        " / ",
      )}; ${RATE} req/s, ${SECONDS} s per phase, ${STREAM > 0 ? `SSE ${STREAM} tokens` : "JSON max_tokens 1"}\n`,
  );
  for (const target of targets) {
    const url = target === "direct" ? engine.url : gatewayUrl;
    await openLoop(agent, url, RATE, 3, BODY);
    pollEngine();
    const gcFrom = [gatewayTrace.lines.length, engineTrace.lines.length] as const;
    const cpuFrom = [cpuTicks(child.pid!), cpuTicks(engine.pid)] as const;
    const load = loadavg()[0]!;
    const result = await openLoop(agent, url, RATE, SECONDS, BODY);
    const cpuTo = [cpuTicks(child.pid!), cpuTicks(engine.pid)] as const;
    await new Promise((resolve) => setTimeout(resolve, 200));
    pollEngine();
    const requests = Math.round(RATE * SECONDS);
    const latency = summary(result.latencies_ms);
    const gw = phaseGc(gatewayTrace, gcFrom[0], gatewayTrace.lines.length, RATE);
    const en = phaseGc(engineTrace, gcFrom[1], engineTrace.lines.length, RATE);
    const gwCpu = perRequest(cpuFrom[0], cpuTo[0], requests);
    const enCpu = perRequest(cpuFrom[1], cpuTo[1], requests);
    const row =
      `| ${target} | ${target === "gateway" ? gwCpu.text : "-"} | ${target === "gateway" ? gw.kbPerRequest.toFixed(1) : "-"} ` +
      `| ${target === "gateway" ? `${gw.scavenges} (${gw.meanPauseMs.toFixed(1)}/${gw.maxPauseMs.toFixed(1)})` : "-"} ` +
      `| ${enCpu.text} | ${en.kbPerRequest.toFixed(1)} | ${en.scavenges} (${en.meanPauseMs.toFixed(1)}/${en.maxPauseMs.toFixed(1)}) ` +
      `| ${latency.p50.toFixed(2)} | ${latency.p99.toFixed(2)} | ${load.toFixed(2)} | ${result.errors} |`;
    rows.push(row);
    process.stderr.write(`${row}\n`);
  }
  await agent.close();
} finally {
  await stop(child);
  rmSync(scratch, { recursive: true, force: true });
}

process.stdout.write(
  [
    `${cpus().length} x ${cpus()[0]?.model ?? "?"}, Node ${process.version}; ${RATE} req/s for ${SECONDS} s per phase, ${STREAM > 0 ? `SSE, ${STREAM} tokens` : "JSON, max_tokens 1"}`,
    "",
    "| path | gateway CPU µs/req (user + sys) | gateway KB/req | gateway scavenges (mean/max ms) | engine CPU µs/req (user + sys) | engine KB/req | engine scavenges (mean/max ms) | p50 ms | p99 ms | load (1 min) | errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
  ].join("\n") + "\n",
);
