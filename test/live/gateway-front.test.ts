/**
 * The gateway's hand-written front door and request lifecycle (served on node:http ahead of
 * fastify): the HTTP layer's refusals (content types, chunked and oversized bodies), routes with a
 * query string, the other routes still reaching fastify, traffic counters from usage blocks and SSE
 * events, and a client or a deadline ending a stream half-way (one counted outcome, worker released).
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { afterEach, describe, it } from "node:test";
import { request } from "undici";
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

async function gatewayWithWorker(
  options: Parameters<typeof startBareGateway>[0] = {},
  bodyLimit?: number,
): Promise<{ g: BareGateway; w: FakeWorker }> {
  bare = await startBareGateway({ maxConcurrencyPerWorker: 4, ...options }, bodyLimit);
  const w = await new FakeWorker().start();
  workers.push(w);
  bare.registry.add({ id: "w1", pool: "p", url: w.url, phase: "ready" });
  return { g: bare, w };
}

void afterEach(async () => {
  await bare?.close();
  bare = undefined;
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});

/** A request body sent in pieces (chunked transfer encoding). */
function chunks(...pieces: string[]): Readable {
  return Readable.from(pieces.map((piece) => Buffer.from(piece)));
}

const completion = JSON.stringify({ model: "m", prompt: "hello", max_tokens: 3 });

void describe("gateway front door", () => {
  void it("refuses content types but JSON and plain text with 415 (a body without one too), as fastify did", async () => {
    const { g, w } = await gatewayWithWorker();
    const url = `${g.url}/v1/completions`;
    const text = await post(url, completion, { "content-type": "text/plain" });
    assert.equal(text.status, 400, "plain text is read as a string, not parsed");
    assert.equal(errorOf(text).message, "the request body must be a JSON object");
    const form = await request(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "prompt=x",
    });
    assert.equal(form.statusCode, 415);
    assert.deepEqual(await form.body.json(), {
      error: {
        message: 'unsupported content type "application/x-www-form-urlencoded": send application/json',
        type: "invalid_request_error",
        code: "unsupported_media_type",
        param: null,
      },
    });
    const none = await request(url, { method: "POST", body: completion });
    assert.equal(none.statusCode, 415);
    await none.body.dump();
    const bodyless = await request(url, { method: "POST" });
    assert.equal(bodyless.statusCode, 400);
    assert.match(
      ((await bodyless.body.json()) as { error: { message: string } }).error.message,
      /JSON object/,
    );
    const charset = await post(url, completion, { "content-type": "Application/JSON; charset=utf-8" });
    assert.equal(charset.status, 200);
    assert.equal(w.received, 1);
    assert.equal(g.gateway.stats.invalid, 4);
    assert.equal(g.gateway.stats.received, 1);
  });

  void it("serves the routes with a query string, chunked bodies, and leaves other routes to fastify", async () => {
    const { g, w } = await gatewayWithWorker({}, 1024);
    const query = await post(`${g.url}/v1/completions?trace=1`, completion);
    assert.equal(query.status, 200);
    assert.equal(w.lastBody, completion);
    const chunked = await request(`${g.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chunks(completion.slice(0, 10), completion.slice(10)),
    });
    assert.equal(chunked.statusCode, 200);
    await chunked.body.dump();
    assert.equal(w.lastBody, completion, "a chunked body is forwarded whole");
    const big = JSON.stringify({ model: "m", prompt: "x".repeat(600) });
    const tooLarge = await request(`${g.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chunks(big, big),
    });
    assert.equal(tooLarge.statusCode, 413, "a chunked body is held to the limit as it arrives");
    await tooLarge.body.dump();
    const models = await request(`${g.url}/v1/models`);
    assert.equal(((await models.body.json()) as { data: { id: string }[] }).data[0]!.id, "m");
    const get = await request(`${g.url}/v1/completions`);
    assert.equal(get.statusCode, 404);
    await get.body.dump();
    for (const path of ["/v1/completions/", "/constructor", "/__proto__"]) {
      const other = await post(`${g.url}${path}`, completion);
      assert.equal(other.status, 404, path);
      assert.match(errorOf(other).message, /^no route POST/);
    }
    assert.equal(w.received, 2);
  });

  void it("counts output tokens from usage blocks and SSE token events", async () => {
    const { g } = await gatewayWithWorker();
    assert.equal((await post(`${g.url}/v1/completions`, completion)).status, 200);
    assert.equal(g.gateway.stats.outputTokens, 3);
    const stream = await post(
      `${g.url}/v1/completions`,
      JSON.stringify({ model: "m", prompt: "hello", max_tokens: 5, stream: true }),
    );
    assert.equal(stream.headers["content-type"], "text/event-stream");
    assert.equal(stream.headers["x-splitscale-worker"], "w1");
    assert.ok(stream.headers["x-request-id"] !== undefined);
    assert.equal(sseEvents(stream.text).at(-1), "[DONE]");
    assert.equal(g.gateway.stats.outputTokens, 8);
    assert.equal(g.gateway.stats.outcomes.ok, 2);
  });
});

void describe("gateway: streams ended half-way", () => {
  void it("counts a client that leaves mid-stream as client_closed and frees its worker", async () => {
    const { g, w } = await gatewayWithWorker();
    w.mode = "slow";
    const controller = new AbortController();
    const response = await request(`${g.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", prompt: "hello", max_tokens: 40, stream: true }),
      signal: controller.signal,
    });
    assert.equal(response.statusCode, 200);
    for await (const _chunk of response.body) break; // the first event, then hang up
    controller.abort();
    await waitFor("counted", () => g.gateway.stats.outcomes.client_closed === 1);
    assert.equal(g.registry.get("w1")!.inFlight, 0);
    assert.equal(g.gateway.stats.inFlight, 0);
    assert.equal(g.gateway.stats.outcomes.ok + g.gateway.stats.outcomes.failed, 0);
  });

  void it("ends a stream past its deadline with a 504 error event", async () => {
    const { g, w } = await gatewayWithWorker();
    w.mode = "slow";
    const answer = await post(
      `${g.url}/v1/completions`,
      JSON.stringify({ model: "m", prompt: "hello", max_tokens: 40, stream: true }),
      { "x-request-timeout-s": "0.3" },
    );
    assert.equal(answer.status, 200);
    const events = sseEvents(answer.text);
    assert.ok(events.length >= 2, "some tokens came first");
    const error = (JSON.parse(events.at(-1)!) as { error: { code: number; type: string; message: string } })
      .error;
    assert.equal(error.code, 504);
    assert.equal(error.type, "deadline_exceeded");
    assert.match(error.message, /deadline passed while worker w1 was answering/);
    assert.equal(g.gateway.stats.outcomes.failed, 1);
    assert.equal(g.gateway.stats.byCode.get(504), 1);
    await waitFor("worker released", () => g.registry.get("w1")!.inFlight === 0);
  });
});
