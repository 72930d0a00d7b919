/**
 * HTTP plumbing shared by the emulated engine and the gateway: fastify instances whose every error
 * (malformed JSON, oversized or empty bodies, unknown routes, a bug in a handler) becomes an
 * OpenAI-style JSON error with a clear message, never a crash or an HTML page.
 */
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import { errorBody } from "./openai.ts";
import type { Logger } from "./log.ts";

export function createHttpApp(options: {
  bodyLimit: number;
  log: Logger;
  /** true: close cuts every connection; "idle": in-flight requests may finish. */
  forceClose?: boolean | "idle";
  /** Called for every request refused by the HTTP layer (malformed JSON, body too large, ...). */
  onRefused?: (status: number) => void;
}): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit,
    // Long streams are normal; the gateway enforces its own per-request deadlines.
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
    forceCloseConnections: options.forceClose ?? true,
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500) options.log.error(`${request.method} ${request.url}: ${error.stack ?? error.message}`);
    if (reply.sent || reply.raw.headersSent) return;
    if (status < 500) options.onRefused?.(status);
    let message: string;
    let code: string;
    switch (error.code) {
      case "FST_ERR_CTP_BODY_TOO_LARGE":
        message = `request body too large (limit ${options.bodyLimit} bytes)`;
        code = "body_too_large";
        break;
      case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
        message = `unsupported content type "${request.headers["content-type"] ?? ""}": send application/json`;
        code = "unsupported_media_type";
        break;
      case "FST_ERR_CTP_EMPTY_JSON_BODY":
        message = "empty request body: expected a JSON object";
        code = "empty_body";
        break;
      case "FST_ERR_CTP_INVALID_JSON_BODY":
        message = `malformed JSON body: ${error.message}`;
        code = "malformed_json";
        break;
      default:
        if (error instanceof SyntaxError || (status === 400 && /JSON/i.test(error.message))) {
          message = `malformed JSON body: ${error.message}`;
          code = "malformed_json";
        } else {
          message = status >= 500 ? `internal error: ${error.message}` : error.message;
          code = status >= 500 ? "internal_error" : "invalid_request";
        }
    }
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
