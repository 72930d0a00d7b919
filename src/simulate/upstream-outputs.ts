import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RequestRecord } from "../metrics/types.ts";
import {
  formatUpstreamSummaryCsv,
  pandasCsvFloat,
  upstreamSummaryRow,
  writeUpstreamDetailedCsv,
} from "../metrics/writers.ts";
import type { SimRequest } from "../serving/request.ts";
import type { InstanceAccounting } from "./simulation.ts";

/** Upstream's request type for generative requests (the only kind its traces hold). */
const GENERATIVE_REQUEST_TYPE = 2;

const REQUEST_NODES_HEADER =
  "request_id,request_type,node_id,node_type,runner,start_timestamp,completion_timestamp";

/** Where and when one request's prefill, decode and KV shipment ran (upstream's request DAG nodes). */
export interface RequestNodes {
  readonly id: number;
  readonly promptRunner: string;
  readonly promptStart: number;
  readonly promptEnd: number;
  readonly tokenRunner: string;
  readonly tokenStart: number;
  readonly tokenEnd: number;
  /** The KV-cache shipment; null when prefill and decode ran on the same instance. */
  readonly kv: { readonly start: number; readonly end: number } | null;
}

/** Reads a request's nodes at its completion (the request object is reused afterwards). */
export function requestNodesOf(request: SimRequest, now: number): RequestNodes {
  const transfer = request.kvTransfer;
  return {
    id: request.id,
    promptRunner: request.prompt.instance!.label,
    promptStart: request.prompt.startTime,
    promptEnd: request.prompt.completionTime,
    tokenRunner: request.token.instance!.label,
    tokenStart: request.token.startTime,
    tokenEnd: now,
    kv: transfer === null ? null : { start: transfer.startTime, end: transfer.completionTime },
  };
}

/**
 * splitwise-sim's `request_nodes.csv` (written by its debug mode): per completed request, in
 * completion order, its PROMPT, TOKEN and (when shipped) KVCacheTransfer nodes, as its Gantt and
 * utilization notebooks read it. Upstream's KV links are all named DummyLink.
 */
export function formatRequestNodesCsv(nodes: Iterable<RequestNodes>): string {
  const lines = [REQUEST_NODES_HEADER];
  const row = (id: number, node: number, type: string, runner: string, start: number, end: number): string =>
    [id, GENERATIVE_REQUEST_TYPE, node, type, runner, pandasCsvFloat(start), pandasCsvFloat(end)].join(",");
  for (const n of nodes) {
    lines.push(row(n.id, 0, "PROMPT", n.promptRunner, n.promptStart, n.promptEnd));
    lines.push(row(n.id, 1, "TOKEN", n.tokenRunner, n.tokenStart, n.tokenEnd));
    if (n.kv !== null) lines.push(row(n.id, 2, "KVCacheTransfer", "DummyLink", n.kv.start, n.kv.end));
  }
  return `${lines.join("\n")}\n`;
}

/**
 * splitwise-sim's `detailed/0_alloc.csv`: per instance, in creation order, its processor name and
 * utilization (busy time / lifetime).
 */
export function formatAllocCsv(instances: readonly InstanceAccounting[]): string {
  const lines = ["instance_names,utilizations"];
  for (const instance of instances) {
    // Labels are upstream's `{processor}_{instance id}`; processor names have no underscore.
    const processor = instance.label.slice(0, instance.label.lastIndexOf("_"));
    lines.push(`${processor},${pandasCsvFloat(instance.utilization)}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Collects a `--splitwise-config` run's completed requests and writes splitwise-sim's own output
 * files under `DIR/upstream/`, so existing notebooks read our runs: `summary.csv`,
 * `detailed/0.csv`, `detailed/0_alloc.csv` and `request_nodes.csv`.
 */
export class UpstreamOutputs {
  private readonly records: RequestRecord[] = [];
  private readonly nodes: RequestNodes[] = [];

  readonly onRecord = (record: RequestRecord): void => {
    this.records.push(record);
  };

  readonly onRequestCompleted = (request: SimRequest, now: number): void => {
    this.nodes.push(requestNodesOf(request, now));
  };

  /** Writes the files; returns their paths. */
  write(outDir: string, instances: readonly InstanceAccounting[]): string[] {
    const dir = join(outDir, "upstream");
    mkdirSync(join(dir, "detailed"), { recursive: true });
    const detailed = join(dir, "detailed", "0.csv");
    writeUpstreamDetailedCsv(detailed, this.records);
    const records = this.records;
    const column = (pick: (record: RequestRecord) => number): Float64Array =>
      Float64Array.from(records, pick);
    const row = upstreamSummaryRow({
      request_ids: column((r) => r.id),
      response_times: column((r) => r.e2e_s),
      queue_times: column((r) => r.queue_s),
      ttft_times: column((r) => r.ttft_s),
      tbt_times: column((r) => r.tbt_s),
      nth_token_overheads: column((r) => r.nth_token_overhead_s),
      prompt_sizes: column((r) => r.prompt_tokens),
      token_sizes: column((r) => r.output_tokens),
    });
    const summary = join(dir, "summary.csv");
    writeFileSync(summary, formatUpstreamSummaryCsv([row]));
    const nodes = join(dir, "request_nodes.csv");
    writeFileSync(nodes, formatRequestNodesCsv(this.nodes));
    const alloc = join(dir, "detailed", "0_alloc.csv");
    writeFileSync(alloc, formatAllocCsv(instances));
    return [summary, detailed, alloc, nodes];
  }
}
