/** Shared pieces of the live-mode tests: fake workers, a bare gateway, and small HTTP clients. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import type { FastifyInstance } from "fastify";
import { Gateway, type GatewayOptions } from "../../src/live/gateway/gateway.ts";
import { baseUrlOf, createHttpApp } from "../../src/live/http.ts";
import { silentLogger } from "../../src/live/log.ts";
import { WorkerRegistry } from "../../src/live/workers.ts";

export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  stepMs = 50,
): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

export type WorkerMode =
  "ok" | "slow" | "error500" | "die-before-answer" | "die-once" | "die-mid-stream" | "end-stream-early";

/** A worker that answers OpenAI requests as told (mode may change during a test), and serves a settable metrics page. */
export class FakeWorker {
  mode: WorkerMode = "ok";
  delayMs = 0;
  metricsPage = "vllm:num_requests_running 0\nvllm:num_requests_waiting 0\n";
  metricsStatus = 200;
  received = 0;
  lastBody = "";
  private server: Server | undefined;
  url = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (this.server === undefined) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.url === "/metrics") {
      res.writeHead(this.metricsStatus, { "content-type": "text/plain" });
      res.end(this.metricsPage);
      return;
    }
    if (req.url === "/health") {
      res.writeHead(200);
      res.end("{}");
      return;
    }
    this.received++;
    this.lastBody = Buffer.concat(chunks).toString("utf8");
    const body = JSON.parse(this.lastBody) as {
      stream?: boolean;
      max_tokens?: number;
    };
    const tokens = body.max_tokens ?? 4;
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    switch (this.mode) {
      case "error500":
        res.writeHead(500, { "content-type": "application/json" });
        res.end('{"error":{"message":"boom"}}');
        return;
      case "die-before-answer":
        res.socket?.destroy();
        return;
      case "die-once":
        this.mode = "ok";
        res.socket?.destroy();
        return;
      default:
        break;
    }
    if (body.stream !== true) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "x",
          object: "text_completion",
          choices: [{ index: 0, text: " a".repeat(tokens), finish_reason: "length" }],
          usage: { prompt_tokens: 1, completion_tokens: tokens, total_tokens: tokens + 1 },
        }),
      );
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    for (let i = 1; i <= tokens; i++) {
      res.write(
        `data: ${JSON.stringify({ choices: [{ index: 0, text: " a", finish_reason: i === tokens ? "length" : null }] })}\n\n`,
      );
      if (this.mode === "die-mid-stream" && i === 2) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        res.socket?.destroy();
        return;
      }
      if (this.mode === "slow") await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (this.mode === "end-stream-early") {
      res.end();
      return;
    }
    res.end("data: [DONE]\n\n");
  }
}

export interface BareGateway {
  readonly app: FastifyInstance;
  readonly gateway: Gateway;
  readonly registry: WorkerRegistry;
  readonly url: string;
  close(): Promise<void>;
}

/** A gateway without controller or actuator: the test adds workers to its registry by hand. */
export async function startBareGateway(
  options: Partial<GatewayOptions> = {},
  bodyLimit = 64 * 1024,
): Promise<BareGateway> {
  const registry = new WorkerRegistry();
  const gateway = new Gateway(registry, {
    servedModelName: "m",
    queueMaxSize: 4,
    queueTimeout_s: 5,
    requestTimeout_s: 30,
    retries: 1,
    strategy: "least_loaded",
    maxConcurrencyPerWorker: 1,
    defaultMaxTokens: 16,
    startupDelay_s: 7,
    log: silentLogger,
    capacityPossible: () => true,
    ...options,
  });
  const app = createHttpApp({
    bodyLimit,
    log: silentLogger,
    forceClose: true,
    onRefused: () => gateway.stats.invalid++,
  });
  gateway.install(app);
  await app.listen({ host: "127.0.0.1", port: 0 });
  return {
    app,
    gateway,
    registry,
    url: baseUrlOf(app),
    async close() {
      gateway.shutdown();
      await app.close();
      await gateway.close();
    },
  };
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await request(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

export function errorOf(answer: Answer): { message: string; type: string; code: string | number | null } {
  return (
    JSON.parse(answer.text) as { error: { message: string; type: string; code: string | number | null } }
  ).error;
}

/** SSE data events of a stream body. */
export function sseEvents(text: string): string[] {
  return text
    .split("\n\n")
    .filter((event) => event.startsWith("data: "))
    .map((event) => event.slice(6));
}
