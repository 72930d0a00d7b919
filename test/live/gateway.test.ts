/**
 * The gateway against fake workers: bad input (400/404/413 with clear JSON, and it keeps serving),
 * backpressure (429 + Retry-After on a full queue, 503 on queue timeout or when no worker can come,
 * 504 past a deadline, never a silent drop), queue reasons, retries on an unreachable or failing
 * worker, and SSE streams whose worker dies (a clear error event, never a hang).
 */
import assert from "node:assert/strict";
import { after, afterEach, describe, it } from "node:test";
import { request } from "undici";
import type { Outcome } from "../../src/live/gateway/gateway.ts";
import {
  errorOf,
  FakeWorker,
  post,
  sseEvents,
  startBareGateway,
  waitFor,
  type BareGateway,
} from "./helpers.ts";

const workers: FakeWorker[] = [];
let bare: BareGateway | undefined;

async function worker(): Promise<FakeWorker> {
  const w = await new FakeWorker().start();
  workers.push(w);
  return w;
}

void afterEach(async () => {
  await bare?.close();
  bare = undefined;
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});
void after(async () => {
  await Promise.all(workers.map((w) => w.stop()));
});

const completion = (extra: Record<string, unknown> = {}) => ({
  model: "m",
  prompt: "hello",
  max_tokens: 4,
  ...extra,
});

function outcomes(g: BareGateway): Record<Outcome, number> & { received: number; inFlight: number } {
  return {
    ...g.gateway.stats.outcomes,
    received: g.gateway.stats.received,
    inFlight: g.gateway.stats.inFlight,
  };
}

void describe("gateway: bad input", () => {
  void it("answers malformed, incomplete, oversized and misrouted requests with clear JSON errors and keeps serving", async () => {
    bare = await startBareGateway({}, 2048);
    const w = await worker();
    bare.registry.add({ id: "w1", pool: "p", url: w.url, phase: "ready" });
    const url = `${bare.url}/v1/completions`;

    const malformed = await post(url, '{"model":"m","prompt":');
    assert.equal(malformed.status, 400);
    assert.match(errorOf(malformed).message, /^malformed JSON body/);
    const missing = await post(url, { model: "m" });
    assert.equal(missing.status, 400);
    assert.deepEqual(errorOf(missing), {
      message: 'missing required field "prompt"',
      type: "invalid_request_error",
      code: "invalid_request",
      param: "prompt",
    });
    const noMessages = await post(`${bare.url}/v1/chat/completions`, { model: "m", messages: [] });
    assert.equal(noMessages.status, 400);
    assert.match(errorOf(noMessages).message, /messages must hold at least one message/);
    const badTokens = await post(url, completion({ max_tokens: -3 }));
    assert.equal(badTokens.status, 400);
    assert.match(errorOf(badTokens).message, /^max_tokens: /);
    const badStream = await post(url, completion({ stream: "yes" }));
    assert.equal(badStream.status, 400);
    const array = await post(url, "[]");
    assert.equal(array.status, 400);
    const empty = await post(url, "");
    assert.equal(empty.status, 400);
    assert.match(errorOf(empty).message, /empty request body/);
    const wrongModel = await post(url, completion({ model: "other" }));
    assert.equal(wrongModel.status, 404);
    assert.equal(errorOf(wrongModel).code, "model_not_found");
    const huge = await post(url, completion({ prompt: "x".repeat(5000) }));
    assert.equal(huge.status, 413);
    assert.match(errorOf(huge).message, /too large \(limit 2048 bytes\)/);
    const route = await request(`${bare.url}/v1/engines`);
    assert.equal(route.statusCode, 404);
    assert.match(
      ((await route.body.json()) as { error: { message: string } }).error.message,
      /no route GET \/v1\/engines/,
    );

    assert.equal(w.received, 0, "nothing bad reached the worker");
    assert.equal(
      bare.gateway.stats.invalid,
      10,
      "refusals of the HTTP layer (bad JSON, empty, too large, no route) are counted too",
    );
    assert.equal(bare.gateway.stats.received, 0);
    const exact =
      '{ "model":"m",   "prompt": "hello", "max_tokens": 4, "temperature": 0.7, "user": "\u00e9" }';
    const ok = await post(url, exact);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers["x-splitscale-worker"], "w1");
    assert.equal(w.lastBody, exact, "the body reaches the worker byte for byte");
    assert.equal(bare.gateway.stats.outcomes.ok, 1);
  });
});

void describe("gateway: backpressure", () => {
  void it("queues up to max_size (WorkerBusy), refuses the rest with 429 and Retry-After, and answers everyone", async () => {
    bare = await startBareGateway({ queueMaxSize: 2, maxConcurrencyPerWorker: 1 });
    const w = await worker();
    w.delayMs = 300;
    bare.registry.add({ id: "w1", pool: "p", url: w.url, phase: "ready" });
    const answers = Promise.all(
      Array.from({ length: 5 }, () => post(`${bare!.url}/v1/completions`, completion())),
    );
    await waitFor("two queued", () => bare!.gateway.queue.length === 2);
    assert.deepEqual(
      bare.gateway.queue.list().map((e) => e.reason),
      ["WorkerBusy", "WorkerBusy"],
    );
    const results = await answers;
    const codes = results.map((r) => r.status).sort();
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);
    for (const refused of results.filter((r) => r.status === 429)) {
      assert.ok(Number(refused.headers["retry-after"]) >= 1, "Retry-After on 429");
      assert.equal(errorOf(refused).code, "queue_full");
    }
    assert.deepEqual(outcomes(bare), {
      ok: 3,
      rejected: 2,
      failed: 0,
      upstream_4xx: 0,
      client_closed: 0,
      received: 5,
      inFlight: 0,
    });
  });

  void it("holds requests with reason NoWorker until a worker is ready, and 503s them (Retry-After) after the queue timeout", async () => {
    bare = await startBareGateway({ queueTimeout_s: 0.4 });
    const first = post(`${bare.url}/v1/completions`, completion());
    await waitFor("queued", () => bare!.gateway.queue.length === 1);
    assert.equal(bare.gateway.queue.list()[0]!.reason, "NoWorker");
    const timedOut = await first;
    assert.equal(timedOut.status, 503);
    assert.equal(errorOf(timedOut).code, "queue_timeout");
    assert.equal(timedOut.headers["retry-after"], "7", "no completions yet: the expected start-up delay");

    const second = post(`${bare.url}/v1/completions`, completion());
    await waitFor("queued again", () => bare!.gateway.queue.length === 1);
    const w = await worker();
    bare.registry.add({ id: "late", pool: "p", url: w.url, phase: "starting" });
    bare.registry.setPhase("late", "ready");
    assert.equal((await second).status, 200);
    assert.deepEqual(outcomes(bare), {
      ok: 1,
      rejected: 1,
      failed: 0,
      upstream_4xx: 0,
      client_closed: 0,
      received: 2,
      inFlight: 0,
    });
  });

  void it("503s at once when no worker exists and none can be started", async () => {
    bare = await startBareGateway({ capacityPossible: () => false });
    const answer = await post(`${bare.url}/v1/completions`, completion());
    assert.equal(answer.status, 503);
    assert.equal(errorOf(answer).code, "no_worker");
    assert.ok(answer.headers["retry-after"] !== undefined);
  });

  void it("ends a request past its deadline with 504, queued or at a worker", async () => {
    bare = await startBareGateway({ maxConcurrencyPerWorker: 1 });
    const w = await worker();
    w.delayMs = 2000;
    bare.registry.add({ id: "w1", pool: "p", url: w.url, phase: "ready" });
    const started = Date.now();
    const atWorkerPromise = post(`${bare.url}/v1/completions`, completion(), {
      "x-request-timeout-s": "0.6",
    });
    await waitFor("the first at the worker", () => bare!.registry.get("w1")!.inFlight === 1);
    const [atWorker, queued] = await Promise.all([
      atWorkerPromise,
      post(`${bare.url}/v1/completions`, completion(), { "x-request-timeout-s": "0.3" }),
    ]);
    assert.ok(Date.now() - started < 1500, "no waiting for the slow worker");
    assert.equal(atWorker.status, 504);
    assert.equal(queued.status, 504);
    assert.match(errorOf(queued).message, /in the queue \(WorkerBusy\)/);
    assert.match(errorOf(atWorker).message, /while worker w1 was answering/);
    await waitFor("worker released", () => bare!.registry.get("w1")!.inFlight === 0);
  });

  void it("forgets a client that goes away while queued", async () => {
    bare = await startBareGateway({ maxConcurrencyPerWorker: 1 });
    const w = await worker();
    w.delayMs = 400;
    bare.registry.add({ id: "w1", pool: "p", url: w.url, phase: "ready" });
    const busy = post(`${bare.url}/v1/completions`, completion());
    const controller = new AbortController();
    const gone = request(`${bare.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(completion()),
      signal: controller.signal,
    }).catch(() => undefined);
    await waitFor("queued", () => bare!.gateway.queue.length === 1);
    controller.abort();
    await gone;
    await waitFor("removed from the queue", () => bare!.gateway.queue.length === 0);
    assert.equal((await busy).status, 200);
    await waitFor("counted", () => bare!.gateway.stats.outcomes.client_closed === 1);
    assert.equal(w.received, 1, "the departed request never reached a worker");
  });
});

void describe("gateway: failing workers", () => {
  void it("retries once on another worker when one is unreachable, then routes around nothing it cannot reach", async () => {
    bare = await startBareGateway({ maxConcurrencyPerWorker: 4 });
    const good = await worker();
    const dead = await worker();
    const deadUrl = dead.url;
    await dead.stop();
    bare.registry.add({ id: "a-dead", pool: "p", url: deadUrl, phase: "ready" });
    bare.registry.add({ id: "b-good", pool: "p", url: good.url, phase: "ready" });
    const answer = await post(`${bare.url}/v1/completions`, completion());
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["x-splitscale-worker"], "b-good");
    assert.equal(bare.gateway.stats.retries, 1);
    assert.equal(bare.registry.get("a-dead")!.failed, 1);
    assert.equal(bare.registry.get("a-dead")!.inFlight, 0);
  });

  void it("probes a worker that dropped a connection and keeps using it when it is healthy", async () => {
    bare = await startBareGateway({ maxConcurrencyPerWorker: 4 });
    const only = await worker();
    only.mode = "die-once"; // a reset on one connection (e.g. a keep-alive race), the process is fine
    bare.registry.add({ id: "only", pool: "p", url: only.url, phase: "ready" });
    const started = Date.now();
    const answer = await post(`${bare.url}/v1/completions`, completion());
    assert.equal(answer.status, 200);
    assert.ok(Date.now() - started < 1500, "not held back by a blind 3 s suspension");
    assert.equal(bare.gateway.stats.retries, 1);
    assert.equal(only.received, 2);
  });

  void it("retries a 5xx elsewhere, and answers 502 when the retry fails too", async () => {
    bare = await startBareGateway({ maxConcurrencyPerWorker: 4 });
    const bad = await worker();
    bad.mode = "error500";
    const good = await worker();
    bare.registry.add({ id: "a", pool: "p", url: bad.url, phase: "ready" });
    bare.registry.add({ id: "b", pool: "p", url: good.url, phase: "ready" });
    assert.equal((await post(`${bare.url}/v1/completions`, completion())).status, 200);
    good.mode = "error500";
    const failed = await post(`${bare.url}/v1/completions`, completion());
    assert.equal(failed.status, 502);
    assert.equal(errorOf(failed).code, "worker_failed");
    assert.match(errorOf(failed).message, /HTTP 500/);
  });

  void it("retries a stream whose worker died before its first byte", async () => {
    bare = await startBareGateway({ maxConcurrencyPerWorker: 4 });
    const dies = await worker();
    dies.mode = "die-before-answer";
    const good = await worker();
    bare.registry.add({ id: "a", pool: "p", url: dies.url, phase: "ready" });
    bare.registry.add({ id: "b", pool: "p", url: good.url, phase: "ready" });
    const answer = await post(`${bare.url}/v1/completions`, completion({ stream: true }));
    assert.equal(answer.status, 200);
    const events = sseEvents(answer.text);
    assert.equal(events.at(-1), "[DONE]");
    assert.equal(events.length, 5);
  });

  void it("ends a stream whose worker dies mid-way with an error event (no [DONE], no hang)", async () => {
    bare = await startBareGateway();
    const dies = await worker();
    dies.mode = "die-mid-stream";
    bare.registry.add({ id: "a", pool: "p", url: dies.url, phase: "ready" });
    const answer = await post(`${bare.url}/v1/completions`, completion({ stream: true, max_tokens: 10 }));
    assert.equal(answer.status, 200);
    const events = sseEvents(answer.text);
    assert.equal(events.length, 3);
    assert.notEqual(events.at(-1), "[DONE]");
    const error = (JSON.parse(events.at(-1)!) as { error: { message: string; code: number } }).error;
    assert.equal(error.code, 502);
    assert.match(error.message, /worker a failed mid-stream .*incomplete/);
    assert.equal(bare.gateway.stats.outcomes.failed, 1);

    dies.mode = "end-stream-early";
    const early = await post(`${bare.url}/v1/completions`, completion({ stream: true, max_tokens: 3 }));
    const last = sseEvents(early.text).at(-1)!;
    assert.match(last, /ended the stream early/);
    assert.equal(bare.gateway.stats.outcomes.failed, 2);
  });

  void it("never routes new work to a draining worker", async () => {
    bare = await startBareGateway({ maxConcurrencyPerWorker: 4 });
    const a = await worker();
    const b = await worker();
    bare.registry.add({ id: "a", pool: "p", url: a.url, phase: "ready" });
    bare.registry.add({ id: "b", pool: "p", url: b.url, phase: "ready" });
    bare.registry.setPhase("a", "draining");
    for (let i = 0; i < 4; i++)
      assert.equal(
        (await post(`${bare.url}/v1/completions`, completion())).headers["x-splitscale-worker"],
        "b",
      );
    assert.equal(a.received, 0);
  });
});
