/**
 * Picks the worker for a request among the ready ones with room (`inFlight < maxConcurrency`).
 *
 * - least_loaded: fewest requests in flight from this gateway; ties broken by the scraped KV-cache
 *   use (less first), then by fewer prompt tokens in prefill, then by id (deterministic).
 * - least_prefill_tokens: fewest prompt tokens still waiting for their first byte (prefill-aware:
 *   a long prompt in prefill delays every new request on that worker), then least loaded.
 * - round_robin: the next worker with room after the last one picked.
 */
import type { Worker } from "../workers.ts";

export type RoutingStrategy = "least_loaded" | "least_prefill_tokens" | "round_robin";

export class Router {
  private lastIndex = -1;

  constructor(
    private readonly strategy: RoutingStrategy,
    /** 0 = unlimited. */
    private readonly maxConcurrency: number,
    private readonly kvUsage: (id: string) => number | undefined = () => undefined,
  ) {}

  hasRoom(worker: Worker): boolean {
    return this.maxConcurrency === 0 || worker.inFlight < this.maxConcurrency;
  }

  /** The worker to use, or undefined when every candidate is full; `exclude` is a preference only. */
  pick(candidates: readonly Worker[], exclude?: ReadonlySet<string>): Worker | undefined {
    if (this.strategy === "round_robin") return this.next(candidates, exclude);
    // One pass, no intermediate arrays (this runs per request): the best open worker not excluded,
    // else the best open one.
    let best: Worker | undefined;
    let bestExcluded: Worker | undefined;
    for (const worker of candidates) {
      if (!this.hasRoom(worker)) continue;
      if (exclude !== undefined && exclude.size > 0 && exclude.has(worker.id)) {
        if (bestExcluded === undefined || this.better(worker, bestExcluded)) bestExcluded = worker;
      } else if (best === undefined || this.better(worker, best)) best = worker;
    }
    return best ?? bestExcluded;
  }

  private next(candidates: readonly Worker[], exclude?: ReadonlySet<string>): Worker | undefined {
    const open = candidates.filter((worker) => this.hasRoom(worker));
    if (open.length === 0) return undefined;
    const preferred =
      exclude === undefined || exclude.size === 0 ? open : open.filter((w) => !exclude.has(w.id));
    const pool = preferred.length > 0 ? preferred : open;
    const sorted = [...pool].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.lastIndex = (this.lastIndex + 1) % sorted.length;
    return sorted[this.lastIndex];
  }

  private better(a: Worker, b: Worker): boolean {
    if (this.strategy === "least_prefill_tokens" && a.prefillTokensInFlight !== b.prefillTokensInFlight)
      return a.prefillTokensInFlight < b.prefillTokensInFlight;
    if (a.inFlight !== b.inFlight) return a.inFlight < b.inFlight;
    const kvA = this.kvUsage(a.id) ?? 0;
    const kvB = this.kvUsage(b.id) ?? 0;
    if (kvA !== kvB) return kvA < kvB;
    if (a.prefillTokensInFlight !== b.prefillTokensInFlight)
      return a.prefillTokensInFlight < b.prefillTokensInFlight;
    return a.id < b.id;
  }
}
