/**
 * End to end on loopback: `serve` with the process actuator spawning emulated engines (5x speed),
 * EverAI's SimpleAutoScaler with min 1 / max 3 (seed 004). A burst makes the queue grow, the fleet
 * scales to at least 2 workers, and returns to 1 after max_idle_time; every request gets a complete
 * answer or a clear 429/503, none lost, none answered twice. Then a worker is killed (SIGKILL) under
 * a stream and a JSON request: the stream ends with an error event, the JSON request is retried
 * once and completes on the restarted worker, and the fleet heals.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { request } from "undici";
import { parseServeConfigText } from "../../src/config/serve-schema.ts";
import { memoryLogger } from "../../src/live/log.ts";
import { startServe, type ServeHandle } from "../../src/live/serve.ts";
import { assertAccounted, burst, sendAndClassify, servedByWorkers } from "./e2e-helpers.ts";
import { waitFor } from "./helpers.ts";

const scratch = mkdtempSync(join(tmpdir(), "splitscale-everai-"));
const DECISIONS = join(scratch, "decisions.jsonl");

const CONFIG = `
name: everai-e2e
listen: { port: 0 }
model: llama2-70b
pools: { mixed: { min: 1, max: 3, startup_delay_s: 2 } }
routing: { max_concurrency_per_worker: 2 }
queue: { max_size: 40, timeout_s: 30 }
requests: { timeout_s: 60, retries: 1 }
actuator:
  type: process
  engine: { time_scale: 5, load_delay_s: 0.3 }
  restart: { backoff_s: 0.2 }
  stop_timeout_s: 3
autoscaling:
  policy: everai
  scrape_interval_s: 0.2
  decision_log: ${DECISIONS}
  policy_config: { min_workers: 1, max_workers: 3, max_queue_size: 1, scale_up_step: 1, max_idle_time: 2, interval_s: 0.5 }
`;

void describe("serve + process actuator + everai (seed 004)", () => {
  let handle: ServeHandle;
  const log = memoryLogger();

  void before(async () => {
    handle = await startServe(parseServeConfigText(CONFIG, "everai-e2e.yaml", process.cwd()), { log });
    await waitFor("the first worker", () => handle.registry.routable().length === 1, 20_000);
  });
  void after(async () => {
    await handle?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  void it("scales up under a burst, answers every request exactly once, and returns to 1 worker after max_idle_time", async () => {
    let maxReady = 0;
    let sawQueue = false;
    const sampler = setInterval(() => {
      maxReady = Math.max(maxReady, handle.registry.routable().length);
      if (handle.gateway.queue.length > 0) sawQueue = true;
    }, 50);
    const results = await burst(handle.url, 80, 16, 50);
    clearInterval(sampler);

    const { complete, refused } = assertAccounted(handle, results);
    assert.ok(sawQueue, "requests waited in the queue (WorkerBusy)");
    assert.ok(maxReady >= 2, `scaled to at least 2 ready workers (max ${maxReady})`);
    assert.ok(complete >= 60, `most requests completed (${complete} complete, ${refused} refused)`);
    assert.equal(handle.gateway.stats.outcomes.ok, complete);
    assert.equal(handle.gateway.stats.outcomes.rejected, refused);
    assert.equal(
      servedByWorkers(handle),
      complete,
      "each completed request was served by exactly one worker",
    );
    const ups = handle.controller!.decisions(100).filter((d) => d.to > d.from);
    assert.ok(
      ups.length >= 1 && ups[0]!.reasons.join(" ").includes("QueueDueBusy"),
      "scale-up explained by the queue",
    );

    await waitFor("the fleet back to 1 worker", () => handle.registry.live("mixed").length === 1, 20_000);
    const downs = handle.controller!.decisions(100).filter((d) => d.to < d.from);
    assert.ok(
      downs.length >= 1 && /idle ≥ 2s/.test(downs.at(-1)!.reasons.join(" ")),
      "scale-down after max_idle_time",
    );
    assert.ok(
      handle.registry.all(true).some((w) => w.phase === "deleted" && w.note === "stopped"),
      "a drained worker was stopped",
    );
    const logged = readFileSync(DECISIONS, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { pool: string; from: number; to: number; reasons: string[] });
    assert.deepEqual(
      logged.map((d) => [d.from, d.to]),
      handle.controller!.decisions(100).map((d) => [d.from, d.to]),
      "the decision log file holds every decision that changed a target",
    );
  });

  void it("fails a killed worker's stream clearly, retries its JSON request once, and heals", async () => {
    await waitFor("one ready worker", () => handle.registry.routable().length === 1, 20_000);
    const worker = handle.registry.routable()[0]!;
    const pid = worker.pid!;
    const retriesBefore = handle.gateway.stats.retries;
    const receivedBefore = handle.gateway.stats.received;

    // A long stream: read it incrementally so the kill lands mid-stream.
    const streamResponse = await request(`${handle.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "llama2-70b",
        prompt: "tell me a long story",
        max_tokens: 1000,
        stream: true,
      }),
    });
    assert.equal(streamResponse.statusCode, 200);
    assert.equal(streamResponse.headers["x-splitscale-worker"], worker.id);
    const jsonAnswer = sendAndClassify(handle.url, 1, 300);
    await waitFor("both requests on the worker", () => worker.inFlight === 2);
    let text = "";
    let killed = false;
    const started = Date.now();
    for await (const chunk of streamResponse.body) {
      text += (chunk as Buffer).toString("utf8");
      if (!killed && text.split("\n\n").length > 5) {
        process.kill(pid, "SIGKILL");
        killed = true;
      }
    }
    assert.ok(killed, "the worker was killed while streaming");
    assert.ok(Date.now() - started < 10_000, "the stream ended promptly (no hang)");
    const events = text.split("\n\n").filter((e) => e.startsWith("data: "));
    const last = events.at(-1)!;
    assert.notEqual(last, "data: [DONE]");
    assert.match(last, /"error".*failed mid-stream.*incomplete/);

    const json = await jsonAnswer;
    assert.equal(json.kind, "complete", json.detail);
    assert.equal(handle.gateway.stats.retries, retriesBefore + 1, "the JSON request was retried once");

    // Healed: the same worker restarted (restarts 1) and ready again; new requests complete.
    await waitFor(
      "the crashed worker restarted",
      () => worker.restarts === 1 && worker.phase === "ready",
      20_000,
    );
    assert.notEqual(worker.pid, pid);
    assert.ok(log.lines.some((line) => line.includes(`worker ${worker.id}: crashed (signal SIGKILL)`)));
    const after = await sendAndClassify(handle.url, 2, 5);
    assert.equal(after.kind, "complete", after.detail);
    assert.equal(handle.gateway.stats.received, receivedBefore + 3);
    assert.deepEqual(
      { failed: handle.gateway.stats.outcomes.failed, inFlight: handle.gateway.stats.inFlight },
      { failed: 1, inFlight: 0 },
      "exactly the killed stream failed",
    );
  });
});
