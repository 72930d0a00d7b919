/**
 * One request's life in the gateway against a fake upstream dispatcher, for what real workers cannot
 * time reliably: a deadline that passes while the request still waits for a connection to its worker
 * (answered 504 at once, the late connection aborted, one outcome), callbacks from the worker after
 * the exchange ended, and a bug in the gateway's bookkeeping (500, one outcome, no retry).
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { request, type Dispatcher } from "undici";
import { Deadlines } from "../../src/live/gateway/deadlines.ts";
import { Exchange, type ExchangeHost } from "../../src/live/gateway/exchange.ts";
import { GatewayStats } from "../../src/live/gateway/outcomes.ts";
import { silentLogger } from "../../src/live/log.ts";
import { WorkerRegistry } from "../../src/live/workers.ts";

/** A dispatcher that keeps the handlers it is given, and a controller that records aborts. */
class HeldDispatcher {
  readonly handlers: Dispatcher.DispatchHandler[] = [];
  dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.handlers.push(handler);
    return true;
  }
}

/** A controller that records aborts and, as undici does, reports them to the handler at once. */
function controller(
  handler: Dispatcher.DispatchHandler,
): Dispatcher.DispatchController & { abortedWith: Error | undefined } {
  return {
    abortedWith: undefined,
    aborted: false,
    paused: false,
    reason: null,
    abort(reason: Error) {
      if (this.abortedWith !== undefined) return;
      this.abortedWith = reason;
      handler.onResponseError?.(this, reason);
    },
    pause() {},
    resume() {},
  };
}

void describe("Exchange", () => {
  let server: Server;
  let url: string;
  const upstream = new HeldDispatcher();
  const stats = new GatewayStats();
  const released: boolean[] = [];
  let onFirstByte = (): void => {};
  const registry = new WorkerRegistry();
  const worker = registry.add({ id: "w1", pool: "p", url: "http://127.0.0.1:9", phase: "ready" });
  const host: ExchangeHost = {
    stats,
    observer: {},
    log: silentLogger,
    retries: 1,
    agent: upstream as unknown as Dispatcher,
    deadlines: new Deadlines(),
    nowMs: Date.now,
    admit: (exchange) => exchange.assign(worker),
    unqueue: () => undefined,
    firstByte: () => onFirstByte(),
    released: (_worker, ok) => released.push(ok),
    quarantine: () => {},
    suspend: () => {},
  };

  void before(async () => {
    server = createServer((_request, response) => {
      const now = Date.now();
      stats.inFlight++;
      new Exchange(
        host,
        "r1",
        "/v1/completions",
        false,
        5,
        now,
        now + 150,
        Buffer.from("{}"),
        response,
      ).start();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  void after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  void it("answers 504 when the deadline passes before the worker connection, then aborts that connection", async () => {
    const started = Date.now();
    const response = await request(`${url}/v1/completions`, { method: "POST", body: "{}" });
    const body = (await response.body.json()) as { error: { code: string; message: string } };
    assert.equal(response.statusCode, 504);
    assert.equal(response.headers["x-request-id"], "r1");
    assert.match(body.error.message, /deadline passed while worker w1 was answering/);
    assert.ok(Date.now() - started < 1000, "answered at the deadline, not when a connection came");
    assert.deepEqual(released, [false], "the worker's slot is freed at once");

    // The connection comes late: the exchange aborts it, and nothing that follows counts twice.
    const handler = upstream.handlers[0]!;
    const late = controller(handler);
    handler.onRequestStart!(late, {});
    assert.ok(late.abortedWith !== undefined);
    handler.onResponseStart!(late, 200, {}, "OK");
    handler.onResponseData!(late, Buffer.from('{"usage":{"completion_tokens":9}}'));
    handler.onResponseEnd!(late, {});
    assert.equal(stats.outcomes.failed, 1);
    assert.equal(stats.byCode.get(504), 1);
    assert.equal(stats.inFlight, 0);
    assert.equal(stats.outputTokens, 0);
    assert.deepEqual(released, [false]);
  });

  void it("answers 500 once, without a retry, when the gateway's own bookkeeping throws", async () => {
    onFirstByte = () => {
      throw new Error("bookkeeping bug");
    };
    const failedBefore = stats.outcomes.failed;
    const answer = request(`${url}/v1/completions`, { method: "POST", body: "{}" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const handler = upstream.handlers[1]!;
    const live = controller(handler);
    handler.onRequestStart!(live, {});
    handler.onResponseStart!(live, 200, { "content-type": "application/json" }, "OK");
    handler.onResponseData!(live, Buffer.from("{}"));
    handler.onResponseEnd!(live, {});
    const response = await answer;
    assert.equal(response.statusCode, 500);
    assert.equal(((await response.body.json()) as { error: { code: string } }).error.code, "internal_error");
    assert.ok(live.abortedWith !== undefined, "the worker's request is aborted");
    assert.equal(stats.outcomes.failed, failedBefore + 1);
    assert.equal(stats.byCode.get(500), 1);
    assert.equal(upstream.handlers.length, 2, "no retry");
    assert.equal(stats.inFlight, 0);
  });
});
