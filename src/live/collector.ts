/**
 * Scrapes the workers' `/metrics` pages and keeps, per worker, the last good reading.
 *
 * - A scrape that fails (unreachable, timeout, non-200, a page with no sample we can use) is recorded
 *   as that worker's error and logged once per change; it never throws and never stops the others.
 * - A page with some bad lines is used for what parses; the bad lines are reported.
 * - Staleness: a worker whose last good scrape is older than `staleness_s` has no metrics
 *   (`undefined`: missing, never zero), which is what policies expect.
 * - Counters become rates (reset-aware) over `rate_window_s`: GPU utilization from the busy-seconds
 *   counter when no gauge is exposed, and the token rates the admin API shows.
 */
import { request } from "undici";
import { GAUGES, HISTOGRAMS, type HistogramSnapshot, type ReplicaMetrics } from "../policy/types.ts";
import { GPU_BUSY_COUNTER, mapEngineMetrics } from "./metrics-map.ts";
import { CounterWindow, histogramDelta, histogramQuantile, mergeHistograms } from "./prometheus/aggregate.ts";
import { parsePrometheusText, type ParsedPage } from "./prometheus/parser.ts";
import type { Logger } from "./log.ts";
import { COUNTERS } from "../policy/types.ts";

export interface ScrapeTarget {
  readonly id: string;
  /** Full URL of the metrics page. */
  readonly url: string;
}

export interface CollectorOptions {
  readonly timeout_s: number;
  readonly staleness_s: number;
  readonly rate_window_s: number;
  /** Pages larger than this are refused (a runaway exporter must not exhaust memory). */
  readonly maxPageBytes: number;
}

export const DEFAULT_COLLECTOR_OPTIONS: CollectorOptions = {
  timeout_s: 2,
  staleness_s: 10,
  rate_window_s: 30,
  maxPageBytes: 8 * 1024 * 1024,
};

export interface WorkerScrapeStatus {
  readonly lastOkAtMs: number | undefined;
  readonly lastError: string | undefined;
  readonly consecutiveFailures: number;
  /** Bad lines on the last page (the rest of the page was used). */
  readonly badLines: readonly string[];
}

interface WorkerEntry {
  metrics: ReplicaMetrics | undefined;
  okAtMs: number | undefined;
  lastError: string | undefined;
  failures: number;
  badLines: string[];
  readonly busy: CounterWindow;
  readonly prompt: CounterWindow;
  readonly generation: CounterWindow;
}

export class MetricsCollector {
  private readonly entries = new Map<string, WorkerEntry>();
  /** Fleet histograms over time, for windowed quantiles (TTFT / ITL over the last minute). */
  private readonly fleetHistory: { atMs: number; ttft?: HistogramSnapshot; itl?: HistogramSnapshot }[] = [];
  scrapes = 0;
  scrapeErrors = 0;

  constructor(
    private readonly options: CollectorOptions,
    private readonly log: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {}

  private entry(id: string): WorkerEntry {
    let entry = this.entries.get(id);
    if (entry === undefined) {
      entry = {
        metrics: undefined,
        okAtMs: undefined,
        lastError: undefined,
        failures: 0,
        badLines: [],
        busy: new CounterWindow(this.options.rate_window_s),
        prompt: new CounterWindow(this.options.rate_window_s),
        generation: new CounterWindow(this.options.rate_window_s),
      };
      this.entries.set(id, entry);
    }
    return entry;
  }

  /** Scrapes every target concurrently; resolves when all have answered or timed out. */
  async scrapeAll(targets: readonly ScrapeTarget[]): Promise<void> {
    await Promise.all(targets.map((target) => this.scrape(target)));
    const live = new Set(targets.map((target) => target.id));
    for (const id of this.entries.keys()) if (!live.has(id)) this.entries.delete(id);
    this.recordFleet();
  }

  async scrape(target: ScrapeTarget): Promise<void> {
    this.scrapes++;
    let text: string;
    try {
      text = await fetchPage(target.url, this.options);
    } catch (error) {
      this.fail(target, describe(error));
      return;
    }
    this.ingest(target, text);
  }

  /** Feeds one page (exposed for tests and for pages obtained another way). */
  ingest(target: ScrapeTarget, text: string): void {
    let page: ParsedPage;
    try {
      page = parsePrometheusText(text);
    } catch (error) {
      // The parser does not throw by design; this guards the gateway against a bug in it.
      this.fail(target, `metrics parser failed: ${describe(error)}`);
      return;
    }
    const mapped = mapEngineMetrics(page);
    const badLines = [
      ...page.errors.map((e) => (e.line > 0 ? `line ${e.line}: ${e.message}` : e.message)),
      ...mapped.problems,
    ];
    if (mapped.recognized === 0) {
      const why =
        page.sampleCount === 0
          ? `malformed metrics page (no valid sample${badLines.length > 0 ? `; ${badLines[0]}` : ""})`
          : `no engine metrics on the page (${page.sampleCount} samples, none of vLLM's or SGLang's names)`;
      this.fail(target, why);
      return;
    }
    const entry = this.entry(target.id);
    const now = this.nowMs();
    const t = now / 1000;
    const counters = mapped.metrics.counters;
    const busy = page.samples.get(GPU_BUSY_COUNTER)?.[0]?.value;
    if (busy !== undefined) entry.busy.add(t, busy);
    const prompt = counters[COUNTERS.promptTokens];
    if (prompt !== undefined) entry.prompt.add(t, prompt);
    const generation = counters[COUNTERS.generationTokens];
    if (generation !== undefined) entry.generation.add(t, generation);
    let metrics = mapped.metrics;
    if (metrics.gauges[GAUGES.gpuUtilization] === undefined) {
      const rate = entry.busy.rate();
      if (rate !== undefined)
        metrics = {
          ...metrics,
          gauges: { ...metrics.gauges, [GAUGES.gpuUtilization]: Math.min(100, Math.max(0, rate * 100)) },
        };
    }
    if (entry.lastError !== undefined) this.log.info(`metrics of worker ${target.id} readable again`);
    if (badLines.length > 0 && entry.badLines.join("\n") !== badLines.join("\n"))
      this.log.warn(
        `worker ${target.id} metrics page has bad lines (ignored): ${badLines.slice(0, 3).join("; ")}`,
      );
    entry.metrics = metrics;
    entry.okAtMs = now;
    entry.lastError = undefined;
    entry.failures = 0;
    entry.badLines = badLines;
  }

  private fail(target: ScrapeTarget, message: string): void {
    this.scrapeErrors++;
    const entry = this.entry(target.id);
    if (entry.lastError !== message)
      this.log.warn(`cannot use metrics of worker ${target.id} (${target.url}): ${message}`);
    entry.lastError = message;
    entry.failures++;
  }

  /** The worker's metrics, or undefined when never scraped, failing for longer than staleness, or stale. */
  metricsFor(id: string): ReplicaMetrics | undefined {
    const entry = this.entries.get(id);
    if (entry?.okAtMs === undefined) return undefined;
    if (this.nowMs() - entry.okAtMs > this.options.staleness_s * 1000) return undefined;
    return entry.metrics;
  }

  status(id: string): WorkerScrapeStatus | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    return {
      lastOkAtMs: entry.okAtMs,
      lastError: entry.lastError,
      consecutiveFailures: entry.failures,
      badLines: entry.badLines,
    };
  }

  /** Token throughput of a worker over the rate window (reset-aware). */
  rates(id: string): { prompt_tokens_per_s?: number; generation_tokens_per_s?: number } {
    const entry = this.entries.get(id);
    if (entry === undefined || this.metricsFor(id) === undefined) return {};
    const prompt = entry.prompt.rate();
    const generation = entry.generation.rate();
    return {
      ...(prompt === undefined ? {} : { prompt_tokens_per_s: prompt }),
      ...(generation === undefined ? {} : { generation_tokens_per_s: generation }),
    };
  }

  forget(id: string): void {
    this.entries.delete(id);
  }

  private recordFleet(): void {
    const ttft: HistogramSnapshot[] = [];
    const itl: HistogramSnapshot[] = [];
    for (const id of this.entries.keys()) {
      const metrics = this.metricsFor(id);
      const t = metrics?.histograms[HISTOGRAMS.ttft];
      const i = metrics?.histograms[HISTOGRAMS.itl];
      if (t !== undefined) ttft.push(t);
      if (i !== undefined) itl.push(i);
    }
    const now = this.nowMs();
    const mergedTtft = mergeHistograms(ttft);
    const mergedItl = mergeHistograms(itl);
    this.fleetHistory.push({
      atMs: now,
      ...(mergedTtft === undefined ? {} : { ttft: mergedTtft }),
      ...(mergedItl === undefined ? {} : { itl: mergedItl }),
    });
    while (this.fleetHistory.length > 2 && this.fleetHistory[1]!.atMs <= now - 60_000)
      this.fleetHistory.shift();
  }

  /**
   * Fleet-wide latency quantiles over roughly the last minute: the workers' histograms merged by
   * bucket, minus the merge a minute ago (`histogram_quantile(q, sum by (le)(rate(...[1m])))`). A
   * worker that joined or left in between makes the delta approximate; a reset falls back to totals.
   */
  fleetQuantiles(q: number): { ttft_s?: number; itl_s?: number } {
    const first = this.fleetHistory[0];
    const last = this.fleetHistory[this.fleetHistory.length - 1];
    if (first === undefined || last === undefined) return {};
    const out: { ttft_s?: number; itl_s?: number } = {};
    if (last.ttft !== undefined) {
      const value = histogramQuantile(q, first === last ? last.ttft : histogramDelta(last.ttft, first.ttft));
      if (value !== undefined) out.ttft_s = value;
    }
    if (last.itl !== undefined) {
      const value = histogramQuantile(q, first === last ? last.itl : histogramDelta(last.itl, first.itl));
      if (value !== undefined) out.itl_s = value;
    }
    return out;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    const code = (error as Error & { code?: string }).code;
    const causeText = cause instanceof Error ? ` (${cause.message})` : "";
    return `${code !== undefined ? `${code}: ` : ""}${error.message}${causeText}`;
  }
  return String(error);
}

async function fetchPage(url: string, options: CollectorOptions): Promise<string> {
  const timeout = options.timeout_s * 1000;
  const response = await request(url, {
    method: "GET",
    headersTimeout: timeout,
    bodyTimeout: timeout,
    signal: AbortSignal.timeout(timeout),
    headers: { accept: "text/plain;version=0.0.4" },
  });
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new Error(`HTTP ${response.statusCode}`);
  }
  const declared = Number(response.headers["content-length"]);
  if (Number.isFinite(declared) && declared > options.maxPageBytes) {
    await response.body.dump();
    throw new Error(`page of ${declared} bytes exceeds ${options.maxPageBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > options.maxPageBytes) {
      response.body.destroy();
      throw new Error(`page exceeds ${options.maxPageBytes} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
