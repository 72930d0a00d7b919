/**
 * The process actuator on its own: a custom string command with placeholders, ports that never
 * collide, a crash loop (restarts with backoff, the worker's last output kept), a worker that never
 * becomes ready (killed at the readiness timeout), graceful drain (waits for in-flight work, can be
 * taken back by a scale-up), and shutdown leaving no process behind.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { request } from "undici";
import { processActuatorSchema } from "../../src/config/serve-schema.ts";
import { ProcessActuator } from "../../src/live/actuators/process.ts";
import { PortAllocator } from "../../src/live/actuators/ports.ts";
import { memoryLogger } from "../../src/live/log.ts";
import { WorkerRegistry } from "../../src/live/workers.ts";
import { waitFor } from "./helpers.ts";

function actuator(config: Record<string, unknown>, initial = 1) {
  const registry = new WorkerRegistry();
  const log = memoryLogger();
  const act = new ProcessActuator({
    config: processActuatorSchema.parse({ type: "process", ...config }),
    pools: [{ name: "p", min: 0, max: 4, initial }],
    registry,
    log,
    baseDir: process.cwd(),
    placeholders: { model: "llama2-70b", served_model: "llama2-70b", gpu: "h100", tp: "8" },
  });
  return { act, registry, log };
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

void describe("process actuator", () => {
  void it("runs a string command with placeholders (a leading `splitscale` runs this installation)", async () => {
    const { act, registry } = actuator({
      command: "splitscale engine --port {port} --served-model-name {served_model}-{pool} --time-scale 50",
    });
    try {
      await act.start();
      await waitFor("ready", () => registry.routable().length === 1, 20_000);
      const worker = registry.routable()[0]!;
      const response = await request(`${worker.url}/v1/models`);
      assert.equal(((await response.body.json()) as { data: { id: string }[] }).data[0]!.id, "llama2-70b-p");
      assert.equal(act.desired("p"), 1);
      assert.equal(act.metricsUrl(worker), `${worker.url}/metrics`);
    } finally {
      await act.close();
    }
    assert.equal(registry.live().length, 0);
  });

  void it("restarts a crashing worker with a doubling backoff and keeps its last output", async () => {
    const { act, registry, log } = actuator({
      command: ["/bin/sh", "-c", "echo 'CUDA out of memory' >&2; exit 3"],
      restart: { backoff_s: 0.1, max_backoff_s: 0.4 },
    });
    try {
      await act.start();
      const worker = registry.live()[0]!;
      await waitFor("three restarts", () => worker.restarts >= 3, 15_000);
      assert.equal(worker.phase, "starting");
      assert.match(worker.note, /crashed \(exit code 3\); restarting in 0\.[1-4] s/);
      assert.deepEqual(act.logTail(worker.id).at(-1), "CUDA out of memory");
      assert.ok(
        log.lines.some((line) =>
          /crashed \(exit code 3\); last output: CUDA out of memory; restarting in 0.2 s/.test(line),
        ),
      );
      assert.equal(act.desired("p"), 1, "a restarting worker still counts towards the target");
    } finally {
      await act.close();
    }
  });

  void it("kills and restarts a worker that never becomes ready", async () => {
    const { act, registry, log } = actuator({
      command: ["/bin/sh", "-c", "exec sleep 30"],
      readiness: { interval_s: 0.05, timeout_s: 0.5 },
      restart: { backoff_s: 0.1 },
    });
    try {
      await act.start();
      const worker = registry.live()[0]!;
      const firstPid = await (async () => {
        await waitFor("a pid", () => worker.pid !== undefined);
        return worker.pid!;
      })();
      await waitFor("restarted", () => worker.restarts >= 1, 10_000);
      assert.ok(log.lines.some((line) => line.includes("not ready after 0.5 s; killing it")));
      await waitFor("the first process gone", () => !alive(firstPid));
    } finally {
      await act.close();
    }
  });

  void it("drains before stopping, takes a draining worker back on scale-up, and leaves no process behind", async () => {
    const { act, registry } = actuator({ engine: { time_scale: 50 }, stop_timeout_s: 2 }, 2);
    const pids: number[] = [];
    try {
      await act.start();
      await waitFor("two ready", () => registry.routable().length === 2, 20_000);
      pids.push(...registry.live().map((w) => w.pid!));
      const [a, b] = registry.live();
      a!.inFlight = 1; // the gateway has a request on it
      assert.equal(await act.reconcile("p", 1, [a!.id], "test"), 1);
      assert.equal(a!.phase, "draining", "the victim drains first, even though it is busy");
      assert.equal(b!.phase, "ready");
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(a!.phase, "draining", "still draining while a request is in flight");
      assert.equal(await act.reconcile("p", 2, [], "test"), 2);
      assert.equal(a!.phase, "ready", "taken back: it is warm");
      assert.equal(await act.reconcile("p", 1, [a!.id], "test"), 1);
      a!.inFlight = 0;
      await waitFor("stopped after its request finished", () => registry.get(a!.id) === undefined, 10_000);
      const gone = registry.all(true).find((w) => w.id === a!.id)!;
      assert.equal(gone.phase, "deleted");
      assert.equal(gone.note, "stopped");
      // Scale to 0 and back: new workers get fresh ids and ports.
      await act.reconcile("p", 0, [], "test");
      await waitFor("all stopped", () => registry.live().length === 0, 10_000);
      await act.reconcile("p", 1, [], "test");
      await waitFor("a new worker", () => registry.routable().length === 1, 20_000);
      pids.push(registry.routable()[0]!.pid!);
      assert.equal(registry.routable()[0]!.id, "p-3");
    } finally {
      await act.close();
    }
    await waitFor("no process left", () => pids.every((pid) => !alive(pid)), 5000);
  });
});

void describe("PortAllocator", () => {
  void it("never hands out a port twice, and skips ports someone else holds", async () => {
    const os = new PortAllocator("127.0.0.1", 0, 0);
    const ports = await Promise.all(Array.from({ length: 20 }, () => os.allocate()));
    assert.equal(new Set(ports).size, 20);

    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
    const taken = (squatter.address() as { port: number }).port;
    try {
      const range = new PortAllocator("127.0.0.1", taken, taken + 2);
      const first = await range.allocate();
      const second = await range.allocate();
      assert.deepEqual(
        [first, second],
        [taken + 1, taken + 2].filter((p) => p !== taken),
      );
      await assert.rejects(range.allocate(), /no free port in/);
      range.release(first);
      assert.equal(await range.allocate(), first);
    } finally {
      squatter.close();
    }
  });
});
