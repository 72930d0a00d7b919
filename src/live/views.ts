/**
 * Terminal views of the admin API in the spirit of EverAI's CLI (seed 004): `workers list` and
 * `queue` print tabulate-style tables (header, dashes, columns two spaces apart), `status` a summary.
 */
import { request } from "undici";
import type { AdminQueueEntry, AdminWorker } from "./gateway/admin.ts";

export const DEFAULT_ADMIN_URL = process.env.SPLITSCALE_URL ?? "http://127.0.0.1:8080";

export class AdminUnreachable extends Error {}

/** GET `path` from the gateway's admin API; AdminUnreachable with a clear message on any failure. */
export async function fetchAdmin<T>(baseUrl: string, path: string, timeout_s = 5): Promise<T> {
  const url = `${baseUrl.replace(/\/+$/, "")}${path}`;
  let text: string;
  let status: number;
  try {
    const response = await request(url, {
      method: "GET",
      headersTimeout: timeout_s * 1000,
      bodyTimeout: timeout_s * 1000,
      signal: AbortSignal.timeout(timeout_s * 1000),
    });
    status = response.statusCode;
    text = await response.body.text();
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new AdminUnreachable(
      `cannot reach the gateway's admin API at ${url}: ${code ?? (error as Error).message} (is \`splitscale serve\` running there? use --url or SPLITSCALE_URL)`,
    );
  }
  if (status !== 200) throw new AdminUnreachable(`${url} answered HTTP ${status}: ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new AdminUnreachable(`${url} did not answer JSON (is this a splitscale gateway?)`);
  }
}

/** tabulate's "simple" format: numbers right-aligned, text left-aligned. */
export function formatSimpleTable(
  headers: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const numeric = headers.map(
    (_, column) => rows.length > 0 && rows.every((row) => typeof row[column] === "number"),
  );
  const text = rows.map((row) => headers.map((_, column) => String(row[column] ?? "")));
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...text.map((row) => row[column]!.length)),
  );
  const pad = (cell: string, column: number): string =>
    numeric[column] === true ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!);
  const line = (cells: readonly string[]): string => cells.map(pad).join("  ").trimEnd();
  return [line(headers), widths.map((width) => "-".repeat(width)).join("  "), ...text.map(line)].join("\n");
}

/** "2024-05-11 19:00:52+0800": local time with its UTC offset, as EverAI prints it. */
export function formatTimestamp(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const two = (n: number): string => String(n).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ` +
    `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`
  );
}

export function renderWorkers(
  workers: readonly AdminWorker[],
  options: { all?: boolean; wide?: boolean } = {},
): string {
  const shown = workers.filter((worker) => options.all === true || worker.phase !== "deleted");
  if (options.wide !== true) {
    return formatSimpleTable(
      ["ID", "STATUS", "DETAIL_STATUS", "CREATED_AT", "DELETED_AT"],
      shown.map((w) => [
        w.id,
        w.status,
        w.detail_status,
        formatTimestamp(w.created_at),
        formatTimestamp(w.deleted_at),
      ]),
    );
  }
  const percent = (value: number | undefined, scale = 1): string =>
    value === undefined ? "-" : `${(value * scale).toFixed(0)}%`;
  return formatSimpleTable(
    [
      "ID",
      "POOL",
      "STATUS",
      "DETAIL_STATUS",
      "IN_FLIGHT",
      "SERVED",
      "RESTARTS",
      "KV",
      "GPU",
      "URL",
      "CREATED_AT",
      "DELETED_AT",
      "NOTE",
    ],
    shown.map((w) => [
      w.id,
      w.pool,
      w.status,
      w.detail_status,
      w.in_flight,
      w.served,
      w.restarts,
      percent(w.metrics?.kv_cache_usage, 100),
      percent(w.metrics?.gpu_utilization),
      w.url ?? "",
      formatTimestamp(w.created_at),
      formatTimestamp(w.deleted_at),
      w.scrape_error !== null ? `metrics: ${w.scrape_error}` : w.note,
    ]),
  );
}

export function renderQueue(entries: readonly AdminQueueEntry[]): string {
  return formatSimpleTable(
    ["QUEUE_INDEX", "CREATE_AT", "QUEUE_REASON"],
    entries.map((entry) => [entry.queue_index, formatTimestamp(entry.created_at), entry.reason]),
  );
}

export interface AdminStatus {
  readonly name: string;
  readonly model: string;
  readonly served_model: string;
  readonly actuator: string;
  readonly policies: readonly string[];
  readonly uptime_s: number;
  readonly pools: readonly {
    name: string;
    role: string;
    min: number;
    max: number;
    desired: number;
    starting: number;
    ready: number;
    busy: number;
    draining: number;
    stopping: number;
  }[];
  readonly queue: {
    length: number;
    max_size: number;
    worker_busy: number;
    no_worker: number;
    oldest_age_s: number;
  };
  readonly requests: Readonly<Record<string, unknown>> & { received: number; in_flight: number };
  readonly latency: { ttft_p90_s: number | null; itl_p90_s: number | null };
  readonly decisions_made: number;
  readonly last_decision: {
    at: string;
    pool: string;
    from: number;
    to: number;
    reasons: readonly string[];
  } | null;
}

export function renderStatus(status: AdminStatus): string {
  const ms = (value: number | null): string => (value === null ? "-" : `${(value * 1000).toFixed(1)} ms`);
  const r = status.requests as Record<string, number>;
  const lines = [
    `gateway      ${status.name}`,
    `model        ${status.served_model} (${status.model})`,
    `actuator     ${status.actuator}; policy ${status.policies.join(", ") || "none (fixed fleet)"}; ${status.decisions_made} decisions`,
    `uptime       ${status.uptime_s.toFixed(0)} s`,
    `queue        ${status.queue.length}/${status.queue.max_size} (WorkerBusy ${status.queue.worker_busy}, NoWorker ${status.queue.no_worker}; oldest ${status.queue.oldest_age_s.toFixed(1)} s)`,
    `requests     ${r.received ?? 0} received, ${r.in_flight ?? 0} in flight, ${r.ok ?? 0} ok, ${r.rejected ?? 0} rejected (429/503), ` +
      `${r.failed ?? 0} failed, ${r.upstream_4xx ?? 0} worker 4xx, ${r.client_closed ?? 0} client closed, ${r.retries ?? 0} retried; ${r.invalid ?? 0} invalid`,
    `latency      TTFT p90 ${ms(status.latency.ttft_p90_s)}, ITL p90 ${ms(status.latency.itl_p90_s)} (workers' histograms, last minute)`,
    "",
    formatSimpleTable(
      ["POOL", "ROLE", "MIN", "MAX", "DESIRED", "STARTING", "READY", "BUSY", "DRAINING"],
      status.pools.map((p) => [
        p.name,
        p.role,
        p.min,
        p.max,
        p.desired,
        p.starting,
        p.ready,
        p.busy,
        p.draining + p.stopping,
      ]),
    ),
  ];
  if (status.last_decision !== null) {
    const d = status.last_decision;
    lines.push(
      "",
      `last scaling ${formatTimestamp(d.at)}: ${d.pool} ${d.from} → ${d.to}: ${d.reasons.join("; ")}`,
    );
  }
  return lines.join("\n");
}
