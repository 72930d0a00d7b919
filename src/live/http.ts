/**
 * HTTP plumbing shared by the emulated engine and the gateway: fastify instances whose every error
 * (malformed JSON, oversized or empty bodies, unknown routes, a bug in a handler) becomes an
 * OpenAI-style JSON error with a clear message, never a crash or an HTML page.
 *
 * Hot routes (the OpenAI endpoints, ~1,000 requests/s) may skip fastify: a front handler registered
 * with `serveFirst` sees every request before fastify's routing and takes the ones it serves by hand
 * on `node:http` (fastify's request, reply, hooks and routing cost about as much CPU per request as the
 * proxying itself). It refuses bad bodies with the same errors fastify's routes give (`refusal`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import { errorBody } from "./openai.ts";
import type { Logger } from "./log.ts";

/** Takes a request (true) or leaves it to fastify (false). */
export type FrontHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

/** What a front handler needs to refuse bodies as the app's fastify routes do. */
export interface FrontLimits {
  readonly bodyLimit: number;
  /** Counts a request refused before it reached a handler (as the app's onRefused does). */
  readonly onRefused: (status: number) => void;
}

interface FrontSlot extends FrontLimits {
  handler: FrontHandler | undefined;
}

const fronts = new WeakMap<FastifyInstance, FrontSlot>();

/** Serves requests by hand before `app`'s routing (the handler returns false for the rest). */
export function serveFirst(app: FastifyInstance, handler: FrontHandler): FrontLimits {
  const slot = fronts.get(app);
  if (slot === undefined) throw new Error("serveFirst: the app was not made by createHttpApp");
  slot.handler = handler;
  return slot;
}

export interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** The HTTP layer's refusals, worded the same for fastify routes and front handlers. */
export const refusal = {
  tooLarge: (limit: number): Refusal => ({
    status: 413,
    code: "body_too_large",
    message: `request body too large (limit ${limit} bytes)`,
  }),
  mediaType: (contentType: string): Refusal => ({
    status: 415,
    code: "unsupported_media_type",
    message: `unsupported content type "${contentType}": send application/json`,
  }),
  empty: (): Refusal => ({
    status: 400,
    code: "empty_body",
    message: "empty request body: expected a JSON object",
  }),
  malformed: (detail: string): Refusal => ({
    status: 400,
    code: "malformed_json",
    message: `malformed JSON body: ${detail}`,
  }),
};

/** Writes a whole JSON answer in one go (`headers`: extra name, value, name, value ...). */
export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: readonly string[] = [],
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, [
    "content-type",
    "application/json; charset=utf-8",
    "content-length",
    String(Buffer.byteLength(text)),
    ...headers,
  ]);
  response.end(text);
}

/** Answers a refusal as fastify's error handler does. */
export function sendRefusal(response: ServerResponse, refused: Refusal): void {
  sendJson(response, refused.status, errorBody(refused.message, "invalid_request_error", refused.code));
}

/** The parsed media type of a Content-Type header (lower case, no parameters). */
function mediaType(header: string): string {
  const semicolon = header.indexOf(";");
  return (semicolon < 0 ? header : header.slice(0, semicolon)).trim().toLowerCase();
}

/**
 * Reads and parses a request body for a front handler, with the rules fastify's routes apply (its
 * two default parsers): application/json is parsed (`value` is what JSON.parse gave), text/plain is a
 * string, no body at all is `undefined`; a body without a content type and any other type are refused
 * (415), as are bodies over `limit` bytes (413, by their Content-Length before reading when they
 * have one), malformed JSON and empty JSON bodies (400). `raw` is the body as received. `done` is not
 * called when the client goes away before the body is complete.
 */
export function readBody(
  request: IncomingMessage,
  limit: number,
  done: (refused: Refusal | undefined, value: unknown, raw: Buffer | undefined) => void,
): void {
  const headers = request.headers;
  const type = headers["content-type"];
  const declared = headers["content-length"];
  const bodyless = headers["transfer-encoding"] === undefined && (declared === undefined || declared === "0");
  let json = type === "application/json";
  let refused: Refusal | undefined;
  if (type === undefined) {
    if (bodyless) return done(undefined, undefined, undefined);
    refused = refusal.mediaType("");
  } else if (!json) {
    const media = mediaType(type);
    json = media === "application/json";
    if (!json && media !== "text/plain") refused = refusal.mediaType(type);
  }
  if (refused === undefined && declared !== undefined && Number(declared) > limit)
    refused = refusal.tooLarge(limit);
  request.on("error", () => {
    // The client went away mid-body: nothing to answer.
  });
  if (refused !== undefined) {
    request.resume(); // drain it, so the connection can serve the next request
    return done(refused, undefined, undefined);
  }
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let received = 0;
  let tooLarge = false;
  request.on("data", (chunk: Buffer) => {
    if (tooLarge) return;
    received += chunk.length;
    if (received > limit) {
      tooLarge = true;
      done(refusal.tooLarge(limit), undefined, undefined);
      return;
    }
    if (first === undefined) first = chunk;
    else (more ??= [first]).push(chunk);
  });
  request.on("end", () => {
    if (tooLarge) return;
    const raw = more !== undefined ? Buffer.concat(more, received) : (first ?? Buffer.alloc(0));
    const text = raw.toString("utf8");
    if (!json) return done(undefined, text, raw);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return done(
        text.trim() === "" ? refusal.empty() : refusal.malformed((error as Error).message),
        undefined,
        undefined,
      );
    }
    done(undefined, value, raw);
  });
}

export function createHttpApp(options: {
  bodyLimit: number;
  log: Logger;
  /** true: close cuts every connection; "idle": in-flight requests may finish. */
  forceClose?: boolean | "idle";
  /** Called for every request refused by the HTTP layer (malformed JSON, body too large, ...). */
  onRefused?: (status: number) => void;
}): FastifyInstance {
  const slot: FrontSlot = {
    bodyLimit: options.bodyLimit,
    onRefused: (status) => options.onRefused?.(status),
    handler: undefined,
  };
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit,
    return503OnClosing: true,
    forceCloseConnections: options.forceClose ?? true,
    // The server fastify would make, with a front handler (serveFirst) ahead of fastify's routing.
    serverFactory: (route) => {
      const server = createServer((request, response) => {
        if (slot.handler === undefined || !slot.handler(request, response)) route(request, response);
      });
      // Long streams are normal; the gateway enforces its own per-request deadlines.
      server.requestTimeout = 0;
      server.keepAliveTimeout = 65_000;
      return server;
    },
  });
  fronts.set(app, slot);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) options.log.error(`${request.method} ${request.url}: ${error.stack ?? error.message}`);
    if (reply.sent || reply.raw.headersSent) return;
    if (status < 500) options.onRefused?.(status);
    let refused: Refusal | undefined;
    switch (error.code) {
      case "FST_ERR_CTP_BODY_TOO_LARGE":
        refused = refusal.tooLarge(options.bodyLimit);
        break;
      case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
        refused = refusal.mediaType(request.headers["content-type"] ?? "");
        break;
      case "FST_ERR_CTP_EMPTY_JSON_BODY":
        refused = refusal.empty();
        break;
      case "FST_ERR_CTP_INVALID_JSON_BODY":
        refused = refusal.malformed(error.message);
        break;
      default:
        if (error instanceof SyntaxError || (status === 400 && /JSON/i.test(error.message)))
          refused = refusal.malformed(error.message);
    }
    const message = refused?.message ?? (status >= 500 ? `internal error: ${error.message}` : error.message);
    const code = refused?.code ?? (status >= 500 ? "internal_error" : "invalid_request");
    void reply
      .code(status)
      .type("application/json")
      .send(errorBody(message, status >= 500 ? "server_error" : "invalid_request_error", code));
  });

  app.setNotFoundHandler((request, reply) => {
    options.onRefused?.(404);
    void reply
      .code(404)
      .send(
        errorBody(
          `no route ${request.method} ${request.url.split("?")[0] ?? ""}`,
          "invalid_request_error",
          "not_found",
        ),
      );
  });
  return app;
}

/** The base URL a listening fastify app answers on (IPv6 addresses bracketed). */
export function baseUrlOf(app: FastifyInstance): string {
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("server is not listening on TCP");
  const wildcard = address.address === "0.0.0.0" || address.address === "::";
  const host = wildcard ? "127.0.0.1" : address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
