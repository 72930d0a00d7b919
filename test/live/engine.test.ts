/**
 * The emulated engine: token timing identical to the simulator's Instance (same performance model,
 * same continuous batching and KV admission), checked on an injected clock so nothing depends on
 * timer jitter; then the HTTP surface (OpenAI endpoints, SSE, usage, /health while loading,
 * /metrics with vLLM's names) and its bad-input answers.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { request } from "undici";
import { Clock, type EventTarget } from "../../src/core/clock.ts";
import { EmulatedEngine } from "../../src/live/engine/emulator.ts";
import { resolveHardware, type Hardware } from "../../src/live/engine/hardware.ts";
import { chatPromptTokensOf, promptTokensOf, requestLengths } from "../../src/live/engine/lengths.ts";
import {
  DEFAULT_ENGINE_OPTIONS,
  startEngineServer,
  streamChunks,
  type EngineServer,
} from "../../src/live/engine/server.ts";
import { mapEngineMetrics } from "../../src/live/metrics-map.ts";
import { parsePrometheusText } from "../../src/live/prometheus/parser.ts";
import { GAUGES } from "../../src/policy/types.ts";
import { waitFor } from "./helpers.ts";
import { Instance, type BatchingConfig, type InstanceHost } from "../../src/serving/instance.ts";
import { ArrivalRanker, SimRequest, type Task } from "../../src/serving/request.ts";

const BATCHING: BatchingConfig = {
  kind: "splitwise",
  maxBatchSize: 512,
  maxBatchTokens: 2048,
  maxPreemptions: 4,
};

interface Arrival {
  readonly at: number;
  readonly prompt: number;
  readonly output: number;
}

/** The reference: the same arrivals through a plain simulated Clock + Instance, as the simulator runs them. */
function simulate(
  hardware: Hardware,
  batching: BatchingConfig,
  arrivals: readonly Arrival[],
): { first: number[]; done: number[] } {
  const clock = new Clock();
  const first: number[] = arrivals.map(() => NaN);
  const done: number[] = arrivals.map(() => NaN);
  const host: InstanceHost = {
    clock,
    taskCompleted(task: Task) {
      if (task.isPrompt) first[task.request.id] = clock.now;
      else done[task.request.id] = clock.now;
    },
    instanceIdle() {},
  };
  const instance = new Instance(
    0,
    hardware.processor,
    null,
    hardware.processor,
    0,
    hardware.tensorParallelism,
    hardware.maxMemoryBytes,
    hardware.weightsBytes,
    hardware.kvBytesPerToken,
    batching,
    hardware.perf,
    hardware.tensorParallelism,
    host,
  );
  const kv = instance as Instance & { reserveDecodeUpFront?: boolean };
  if ("reserveDecodeUpFront" in kv) kv.reserveDecodeUpFront = true; // the simulator's default, as the emulator
  const ranks = new ArrivalRanker();
  arrivals.forEach((arrival, id) => {
    const target: EventTarget = {
      onEvent() {
        const request = new SimRequest(
          id,
          clock.now,
          ranks.rankOf(clock.now),
          arrival.prompt,
          arrival.output,
        );
        request.prompt.chained = request.token;
        instance.taskArrival(request.prompt);
        instance.taskArrival(request.token);
      },
    };
    clock.scheduleAt(arrival.at, target);
  });
  clock.run();
  return { first, done };
}

/** The emulator on a clock the test moves: submits at the arrival times, stepping 1 ms at a time. */
function emulate(hardware: Hardware, batching: BatchingConfig, arrivals: readonly Arrival[], timeScale = 1) {
  let nowMs = 0;
  const engine = new EmulatedEngine({ hardware, batching, timeScale, nowMs: () => nowMs });
  const tokens: number[][] = arrivals.map(() => []);
  const finished: boolean[] = arrivals.map(() => false);
  const pending = [...arrivals.entries()];
  while (finished.some((f) => !f)) {
    while (
      pending.length > 0 &&
      pending[0]![1].at * 1000 <= nowMs / 1 + 1e-9 &&
      Math.abs(pending[0]![1].at * 1000 - nowMs) < 1e-6
    ) {
      const [id, arrival] = pending.shift()!;
      engine.submit(arrival.prompt, arrival.output, {
        onToken: (_index, time) => tokens[id]!.push(time),
        onDone: () => (finished[id] = true),
      });
    }
    const next = pending[0] === undefined ? Infinity : pending[0][1].at * 1000;
    nowMs = Math.min(nowMs + 1, next);
    engine.sync();
    if (nowMs > 600_000) throw new Error("emulation did not finish");
  }
  engine.close();
  return { tokens, engine };
}

void describe("EmulatedEngine timing", () => {
  const hardware = resolveHardware({ model: "llama2-70b", gpu: "h100", tp: 8 });

  void it("times a lone request by the performance model: prefill, then one decode step per token", () => {
    const { tokens } = emulate(hardware, BATCHING, [{ at: 0, prompt: 512, output: 5 }]);
    const prefill = hardware.perf.iterationTime({
      prefillTokens: 512,
      numPrefill: 1,
      numDecode: 0,
      decodeContextTokens: 0,
    });
    const step = hardware.perf.iterationTime({
      prefillTokens: 0,
      numPrefill: 0,
      numDecode: 1,
      decodeContextTokens: 513,
    });
    const times = tokens[0]!;
    assert.equal(times.length, 5);
    assert.ok(Math.abs(times[0]! - prefill) < 1e-9, `TTFT ${times[0]} = prefill ${prefill}`);
    for (let i = 1; i < 5; i++)
      assert.ok(Math.abs(times[i]! - times[i - 1]! - step) < 1e-9, `token ${i + 1} one decode step later`);
  });

  void it("matches the simulator's Instance request by request under contention", () => {
    const arrivals: Arrival[] = [
      { at: 0, prompt: 1500, output: 40 },
      { at: 0, prompt: 300, output: 1 },
      { at: 0.012, prompt: 900, output: 25 },
      { at: 0.05, prompt: 2500, output: 60 },
      { at: 0.051, prompt: 100, output: 12 },
      { at: 0.3, prompt: 700, output: 30 },
    ];
    const reference = simulate(hardware, BATCHING, arrivals);
    const { tokens } = emulate(hardware, BATCHING, arrivals);
    arrivals.forEach((arrival, id) => {
      const times = tokens[id]!;
      assert.equal(times.length, arrival.output, `request ${id}: every token delivered`);
      assert.ok(
        Math.abs(times[0]! - reference.first[id]!) < 1e-9,
        `request ${id}: first token ${times[0]} vs simulator ${reference.first[id]}`,
      );
      // (A 1-token request has no decode step: its "completion" is bookkeeping, not a token.)
      if (arrival.output > 1)
        assert.ok(
          Math.abs(times[times.length - 1]! - reference.done[id]!) < 1e-9,
          `request ${id}: last token ${times.at(-1)} vs simulator ${reference.done[id]}`,
        );
      for (let i = 1; i < times.length; i++) assert.ok(times[i]! >= times[i - 1]!, "tokens in order");
    });
  });

  void it("admits by KV-cache memory: a request that does not fit waits for one to finish", () => {
    // A KV cache of ~1000 tokens: two 400-token prompts fit, the third waits.
    const small: Hardware = {
      ...hardware,
      maxMemoryBytes: hardware.weightsBytes + 1000 * hardware.kvBytesPerToken,
      maxKvTokens: 1000,
    };
    const arrivals: Arrival[] = [
      { at: 0, prompt: 400, output: 20 },
      { at: 0, prompt: 400, output: 20 },
      { at: 0, prompt: 400, output: 20 },
    ];
    const { tokens } = emulate(small, BATCHING, arrivals);
    const reference = simulate(small, BATCHING, arrivals);
    assert.ok(
      tokens[2]![0]! >= Math.min(tokens[0]!.at(-1)!, tokens[1]!.at(-1)!) - 1e-9,
      "the third starts after one finished",
    );
    assert.ok(Math.abs(tokens[2]![0]! - reference.first[2]!) < 1e-9);
  });

  void it("reports running, waiting, KV use and utilization like vLLM's gauges", () => {
    let nowMs = 0;
    const engine = new EmulatedEngine({
      hardware,
      batching: { ...BATCHING, maxBatchSize: 2 },
      timeScale: 1,
      nowMs: () => nowMs,
    });
    const done: number[] = [];
    for (let i = 0; i < 4; i++) engine.submit(200, 50, { onToken() {}, onDone: () => done.push(i) });
    nowMs = 1;
    engine.sync();
    assert.equal(engine.running, 1, "the first prefill started alone, as the simulator's Instance does");
    nowMs = 150;
    engine.sync();
    assert.equal(engine.running, 2);
    assert.equal(engine.waiting, 2);
    assert.equal(engine.inFlight, 4);
    assert.ok(engine.kvCacheUsage > 0);
    nowMs = 500;
    assert.ok(engine.utilizationPercent() > 99);
    nowMs = 60_000;
    engine.sync();
    assert.equal(done.length, 4);
    assert.equal(engine.running, 0);
    assert.equal(engine.kvCacheUsage, 0);
    assert.equal(engine.promptTokens, 800);
    assert.equal(engine.generationTokens, 200);
    assert.equal(engine.requestsCompleted, 4);
    assert.equal(engine.ttft.count, 4);
    assert.equal(engine.itl.count, 4 * 49);
    engine.close();
  });

  void it("scales time: a 10x engine gives every token a tenth of the wall time", () => {
    const arrivals: Arrival[] = [{ at: 0, prompt: 512, output: 4 }];
    const slow = emulate(hardware, BATCHING, arrivals, 1).tokens[0]!;
    const fast = emulate(hardware, BATCHING, arrivals, 10).tokens[0]!;
    slow.forEach((time, i) => assert.ok(Math.abs(fast[i]! - time / 10) < 1e-9));
  });
});

void describe("prompt and output lengths", () => {
  void it("counts text, token ids, hints and chat messages", () => {
    assert.equal(promptTokensOf("abcd".repeat(10)), 10);
    assert.equal(promptTokensOf("a"), 1);
    assert.equal(promptTokensOf([1, 2, 3]), 3);
    assert.equal(promptTokensOf([[1, 2], [3]]), 3);
    assert.equal(promptTokensOf(["abcd", "abcdefgh"]), 3);
    assert.equal(chatPromptTokensOf([{ role: "user", content: "abcdefgh" }]), 3 + 4 + 2);
    assert.equal(
      chatPromptTokensOf([{ role: "user", content: [{ type: "text", text: "abcd" }] }]),
      3 + 4 + 1,
    );
    assert.deepEqual(requestLengths("completions", { prompt: "x", prompt_tokens: 900, max_tokens: 7 }, 256), {
      prompt: 900,
      output: 7,
    });
    assert.deepEqual(requestLengths("chat", { messages: [], max_completion_tokens: 3, max_tokens: 9 }, 256), {
      prompt: 3,
      output: 3,
    });
    assert.deepEqual(requestLengths("completions", { prompt: "abcd" }, 256), { prompt: 1, output: 256 });
  });
});

void describe("engine HTTP server", () => {
  let server: EngineServer;
  const post = async (
    path: string,
    body: unknown,
    headers: Record<string, string> = { "content-type": "application/json" },
  ) => {
    const response = await request(`${server.url}${path}`, {
      method: "POST",
      headers,
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await response.body.text();
    return { status: response.statusCode, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };

  void before(async () => {
    server = await startEngineServer({
      ...DEFAULT_ENGINE_OPTIONS,
      port: 0,
      timeScale: 50,
      loadDelay_s: 1.5,
      maxModelLen: 4096,
      bodyLimitBytes: 64 * 1024,
    });
  });
  void after(async () => {
    await server.close();
  });

  void it("answers 503 on /health and completions while loading, then 200", async () => {
    const health = await request(`${server.url}/health`);
    assert.equal(health.statusCode, 503);
    assert.deepEqual(await health.body.json(), { status: "loading" });
    const early = await post("/v1/completions", { model: "llama2-70b", prompt: "hi" });
    assert.equal(early.status, 503);
    await waitFor("ready after the load delay", async () => {
      const ready = await request(`${server.url}/health`);
      await ready.body.dump();
      return ready.statusCode === 200;
    });
    assert.ok(server.isReady());
  });

  void it("lists its model", async () => {
    const response = await request(`${server.url}/v1/models`);
    const body = (await response.body.json()) as { data: { id: string; max_model_len: number }[] };
    assert.equal(body.data[0]!.id, "llama2-70b");
    assert.equal(body.data[0]!.max_model_len, 4096);
  });

  void it("completes (JSON) with usage and exactly max_tokens tokens", async () => {
    const response = await post("/v1/completions", {
      model: "llama2-70b",
      prompt: "abcd".repeat(25),
      max_tokens: 7,
    });
    assert.equal(response.status, 200);
    const body = response.json() as {
      object: string;
      choices: { text: string; finish_reason: string }[];
      usage: Record<string, number>;
    };
    assert.equal(body.object, "text_completion");
    assert.deepEqual(body.usage, { prompt_tokens: 25, completion_tokens: 7, total_tokens: 32 });
    assert.equal(body.choices[0]!.text.trim().split(/\s+/).length, 7);
    assert.equal(body.choices[0]!.finish_reason, "length");
  });

  void it("streams chat completions as SSE, one chunk per token, with usage and [DONE]", async () => {
    const response = await post("/v1/chat/completions", {
      model: "llama2-70b",
      messages: [{ role: "user", content: "hello there" }],
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
      ignore_eos: true,
    });
    assert.equal(response.status, 200);
    const events = response.text
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map(
      (e) =>
        JSON.parse(e) as {
          choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[];
          usage?: Record<string, number>;
        },
    );
    const tokenChunks = chunks.filter((c) => c.choices.length > 0);
    assert.equal(tokenChunks.length, 6);
    assert.equal(tokenChunks[0]!.choices[0]!.delta.role, "assistant");
    assert.equal(tokenChunks.at(-1)!.choices[0]!.finish_reason, "length");
    assert.deepEqual(chunks.at(-1)!.usage, {
      prompt_tokens: 3 + 4 + 3,
      completion_tokens: 6,
      total_tokens: 16,
    });
  });

  void it("refuses bad input with clear JSON errors and keeps serving", async () => {
    const malformed = await post("/v1/completions", '{"model": "llama2-70b", "prompt": ');
    assert.equal(malformed.status, 400);
    assert.match(String((malformed.json().error as { message: string }).message), /malformed JSON/);
    const missing = await post("/v1/completions", { model: "llama2-70b" });
    assert.equal(missing.status, 400);
    assert.equal((missing.json().error as { message: string }).message, 'missing required field "prompt"');
    const badType = await post("/v1/completions", { model: "llama2-70b", prompt: "x", max_tokens: "ten" });
    assert.equal(badType.status, 400);
    assert.match((badType.json().error as { message: string }).message, /^max_tokens: /);
    const notObject = await post("/v1/chat/completions", "[1,2]");
    assert.equal(notObject.status, 400);
    const wrongModel = await post("/v1/completions", { model: "gpt-4", prompt: "x" });
    assert.equal(wrongModel.status, 404);
    const tooLong = await post("/v1/completions", {
      model: "llama2-70b",
      prompt: "x",
      prompt_tokens: 4000,
      max_tokens: 200,
    });
    assert.equal(tooLong.status, 400);
    assert.match(
      (tooLong.json().error as { message: string }).message,
      /maximum context length is 4096 tokens/,
    );
    const huge = await post("/v1/completions", { model: "llama2-70b", prompt: "x".repeat(100 * 1024) });
    assert.equal(huge.status, 413);
    assert.match((huge.json().error as { message: string }).message, /too large/);
    const wrongType = await post("/v1/completions", "prompt=x", { "content-type": "text/plain" });
    assert.equal(wrongType.status, 400);
    assert.equal(
      (wrongType.json().error as { message: string }).message,
      "the request body must be a JSON object",
    );
    const form = await post("/v1/completions", "prompt=x", {
      "content-type": "application/x-www-form-urlencoded",
    });
    assert.equal(form.status, 415);
    const unknown = await request(`${server.url}/v2/nothing`);
    assert.equal(unknown.statusCode, 404);
    await unknown.body.dump();
    const ok = await post("/v1/completions", { model: "llama2-70b", prompt: "still here", max_tokens: 2 });
    assert.equal(ok.status, 200);
  });

  void it("exposes /metrics in Prometheus text with vLLM's names", async () => {
    const response = await request(`${server.url}/metrics`);
    assert.match(String(response.headers["content-type"]), /^text\/plain/);
    const page = parsePrometheusText(await response.body.text());
    assert.deepEqual(page.errors, []);
    for (const name of [
      "vllm:num_requests_running",
      "vllm:num_requests_waiting",
      "vllm:kv_cache_usage_perc",
      "vllm:prompt_tokens_total",
      "vllm:generation_tokens_total",
      "vllm:request_success_total",
      "vllm:time_to_first_token_seconds_bucket",
      "vllm:inter_token_latency_seconds_bucket",
      "vllm:e2e_request_latency_seconds_count",
      "splitscale:gpu_utilization_perc",
    ])
      assert.ok(page.samples.has(name), name);
    const { metrics } = mapEngineMetrics(page);
    assert.equal(metrics.gauges[GAUGES.running], 0);
    assert.equal(metrics.counters.request_success_total, server.engine.requestsCompleted);
    assert.equal(metrics.histograms.time_to_first_token_seconds?.count, server.engine.requestsCompleted);
  });
});

void describe("engine stream chunks", () => {
  void it("are exactly what JSON.stringify writes for OpenAI's chunk objects", () => {
    for (const model of ["llama2-70b", 'we"ird\\model é']) {
      for (const text of [" fox", ' "quoted"\n', ""]) {
        for (const index of [1, 2]) {
          for (const last of [false, true]) {
            const finish_reason = last ? "length" : null;
            assert.equal(
              streamChunks("completions", "cmpl-1a", 1700000000, model)(index, text, last),
              JSON.stringify({
                id: "cmpl-1a",
                object: "text_completion",
                created: 1700000000,
                model,
                choices: [{ index: 0, text, logprobs: null, finish_reason }],
              }),
            );
            assert.equal(
              streamChunks("chat", "cmpl-1a", 1700000000, model)(index, text, last),
              JSON.stringify({
                id: "cmpl-1a",
                object: "chat.completion.chunk",
                created: 1700000000,
                model,
                choices: [
                  {
                    index: 0,
                    delta: index === 1 ? { role: "assistant", content: text } : { content: text },
                    logprobs: null,
                    finish_reason,
                  },
                ],
              }),
            );
          }
        }
      }
    }
  });
});
