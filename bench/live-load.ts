/**
 * Pieces shared by the live-mode benchmarks (bench/gateway.ts, bench/gateway-cost.ts): child
 * processes that print their URL, an open-loop HTTP client at a fixed rate, and percentiles.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { request, type Agent } from "undici";

export const ROOT = fileURLToPath(new URL("../", import.meta.url));
const TSX = import.meta.resolve("tsx");

/** The emulated engine's command: the sources through tsx, or the compiled `dist` (DIR of `npm run build`). */
export function engineCommand(dist?: string): string[] {
  return dist === undefined
    ? [process.execPath, "--import", TSX, join(ROOT, "src/live/engine/main.ts")]
    : [process.execPath, join(dist, "live/engine/main.js")];
}

/** The CLI's command (bin/splitscale.js runs the sources through tsx), or the compiled one. */
export function cliCommand(dist?: string): string[] {
  return dist === undefined
    ? [process.execPath, join(ROOT, "bin/splitscale.js")]
    : [process.execPath, join(dist, "cli/main.js")];
}

export const CLI = cliCommand();

export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index]!;
}

export function summary(values: readonly number[]): {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
} {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

/** Spawns a child and resolves with the first URL it prints ("listening on" / "serving on"). */
export function spawnAndWaitUrl(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], cwd: ROOT, env });
    let out = "";
    let err = "";
    let found = false;
    child.stdout.on("data", (data: Buffer) => {
      if (found) return;
      out += data.toString();
      const match = /(?:listening|serving) on (http:\/\/\S+)/.exec(out);
      if (match !== null) {
        found = true;
        out = "";
        resolve({ child, url: match[1]!, stderr: () => err });
      }
    });
    child.stderr.on("data", (data: Buffer) => (err += data.toString()));
    child.once("exit", (code) => reject(new Error(`${argv.join(" ")} exited with ${code}: ${err}`)));
  });
}

export function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 8000).unref();
  });
}

/** POSTs `body` to `<url>/v1/completions` at `rate` per second for `seconds`, open loop (arrivals never wait for answers). */
export async function openLoop(
  agent: Agent,
  url: string,
  rate: number,
  seconds: number,
  body: string,
): Promise<{ latencies_ms: number[]; errors: number; achieved_rps: number }> {
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  let sent = 0;
  const fire = (): void => {
    const t0 = performance.now();
    inflight.push(
      request(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        dispatcher: agent,
      })
        .then(async (response) => {
          await response.body.text();
          if (response.statusCode === 200) latencies.push(performance.now() - t0);
          else errors++;
        })
        .catch(() => {
          errors++;
        }),
    );
  };
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
      while (sent < due) {
        fire();
        sent++;
      }
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const sendSpan = (performance.now() - start) / 1000;
  await Promise.all(inflight);
  return { latencies_ms: latencies, errors, achieved_rps: total / sendSpan };
}
