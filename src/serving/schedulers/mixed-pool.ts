import type { Instance } from "../instance.ts";
import type { SimRequest } from "../request.ts";
import {
  pendingTokensOf,
  removeFrom,
  schedMemoryOf,
  type Placement,
  type SchedulerOptions,
} from "./scheduler.ts";
import { KvScheduler } from "./kv.ts";

const promptKv = (request: SimRequest, instance: Instance): number =>
  (request.promptTokens + 1) * instance.kvBytesPerToken;
const decodeKv = (request: SimRequest, instance: Instance): number =>
  (request.outputTokens - 1) * instance.kvBytesPerToken;

/**
 * The Splitwise paper's scheduler: prefill on the prompt instance with the fewest pending tokens
 * (unless its queue would exceed `promptMaxPendingBatchTokens`), decode on the token instance with the
 * least reserved memory (unless the request would not fit). When a pool is saturated it borrows an
 * instance from the other pool into a "mixed" pool (upstream); with `onSaturation: queue` it holds the
 * request at the scheduler while the prompt pool is saturated and lets the KV shipment wait when the
 * token pool is; `hold` holds it when either pool is saturated (the DRL fork's back-pressure).
 */
export class MixedPoolScheduler extends KvScheduler {
  readonly mixedInstances: Instance[] = [];

  constructor(
    options: SchedulerOptions,
    readonly name = "mixed_pool",
  ) {
    super(options);
  }

  override removeInstance(instance: Instance): void {
    super.removeInstance(instance);
    removeFrom(this.mixedInstances, instance);
  }

  protected isQueueLong(instance: Instance, request: SimRequest): boolean {
    return (
      instance.pendingQueue.length > 0 &&
      instance.schedPendingTokens + request.promptTokens > this.options.promptMaxPendingBatchTokens
    );
  }

  protected isMemoryLoaded(instance: Instance, request: SimRequest): boolean {
    return (
      instance.schedMemory + promptKv(request, instance) + decodeKv(request, instance) >= instance.maxMemory
    );
  }

  protected bestPrompt(pool: readonly Instance[], request: SimRequest): Instance | null {
    const candidate = this.argmin(pool, pendingTokensOf);
    return candidate === null || this.isQueueLong(candidate, request) ? null : candidate;
  }

  protected bestToken(pool: readonly Instance[], request: SimRequest): Instance | null {
    const candidate = this.argmin(pool, schedMemoryOf);
    return candidate === null || this.isMemoryLoaded(candidate, request) ? null : candidate;
  }

  schedule(request: SimRequest): Placement | null {
    let prompt =
      this.bestPrompt(this.promptInstances, request) ?? this.bestPrompt(this.mixedInstances, request);
    let token = this.bestToken(this.tokenInstances, request) ?? this.bestToken(this.mixedInstances, request);

    if (this.options.onSaturation === "queue") {
      // Only prefill back-pressure holds a request: with every decode cache full, the request still
      // runs its prefill and its KV shipment waits for room at the least-loaded decode instance
      // (Splitwise's design), so a full decode pool costs decode latency, not time to first token.
      if (prompt !== null && token === null) token = this.argmin(this.tokenInstances, schedMemoryOf);
      if (prompt === null || token === null) return null;
    } else if (this.options.onSaturation === "hold") {
      if (prompt === null || token === null) return null;
    } else {
      if (prompt === null) {
        const borrowed = this.argmin(this.tokenInstances, pendingTokensOf);
        if (borrowed !== null) {
          this.moveToMixed(borrowed, this.tokenInstances);
          prompt = borrowed;
        }
      }
      if (token === null) {
        const borrowed = this.argmin(this.promptInstances, schedMemoryOf);
        if (borrowed !== null) {
          this.moveToMixed(borrowed, this.promptInstances);
          token = borrowed;
        }
      }
      if (prompt === null || token === null) {
        const all = [...this.promptInstances, ...this.mixedInstances, ...this.tokenInstances];
        const fallback = this.argmin(all, pendingTokensOf);
        if (fallback === null) return null;
        prompt = token = fallback;
      }
    }
    this.book(request, prompt, token);
    return { prompt, token };
  }

  protected book(request: SimRequest, prompt: Instance, token: Instance): void {
    if (prompt !== token) {
      prompt.schedMemory += promptKv(request, prompt);
      token.schedMemory += promptKv(request, token) + decodeKv(request, token);
    } else {
      prompt.schedMemory += promptKv(request, prompt) + decodeKv(request, prompt);
    }
    prompt.schedPendingTokens += request.promptTokens;
    token.schedPendingTokens += 1;
  }

  private moveToMixed(instance: Instance, from: Instance[]): void {
    removeFrom(from, instance);
    this.mixedInstances.push(instance);
    instance.schedTag = "mixed";
  }

  /** A borrowed instance that ran dry returns to its own pool. */
  override notifyFreeInstance(instance: Instance): void {
    if (instance.schedTag !== "mixed") return;
    instance.schedTag = null;
    removeFrom(this.mixedInstances, instance);
    if (instance.tag === "token") this.tokenInstances.push(instance);
    else this.promptInstances.push(instance);
  }
}

/**
 * The DRL fork's adaptive pool, repaired (upstream crashes on its first call): no mixed pool; when a
 * pool is saturated the request is co-located on the least-loaded instance of either pool, and every
 * `adjustEvery` placements one instance migrates between pools when the median normalized TTFT and TBT
 * of recent completions are out of balance by more than `ratioThreshold`.
 */
export class AdaptiveMixedPoolScheduler extends MixedPoolScheduler {
  private placements = 0;
  private readonly recentTtft: number[] = [];
  private readonly recentTbt: number[] = [];

  constructor(
    options: SchedulerOptions,
    private readonly adjustEvery = 1,
    private readonly ratioThreshold = 5,
  ) {
    super(options, "adaptive_mixed_pool");
  }

  /** The DRL fork filters this scheduler's instances by status, unlike mixed_pool's. */
  protected override get statusBlindUpstream(): boolean {
    return false;
  }

  /** Slowdowns of a completed request (latency / unloaded latency), fed by the simulation. */
  observeCompletion(ttftSlowdown: number, tbtSlowdown: number): void {
    this.recentTtft.push(ttftSlowdown);
    this.recentTbt.push(tbtSlowdown);
  }

  override schedule(request: SimRequest): Placement | null {
    if (++this.placements % this.adjustEvery === 0) this.rebalance();
    const prompt = this.bestPrompt(this.promptInstances, request);
    const token = this.bestToken(this.tokenInstances, request);
    if (prompt !== null && token !== null) {
      this.book(request, prompt, token);
      return { prompt, token };
    }
    const fallback = this.argmin([...this.promptInstances, ...this.tokenInstances], pendingTokensOf);
    if (fallback === null) return null;
    this.book(request, fallback, fallback);
    return { prompt: fallback, token: fallback };
  }

  private rebalance(): void {
    if (this.recentTtft.length === 0) return;
    const ttft = medianOf(this.recentTtft);
    const tbt = medianOf(this.recentTbt);
    this.recentTtft.length = 0;
    this.recentTbt.length = 0;
    if (tbt > 0 && ttft / tbt > this.ratioThreshold && this.usableCount(this.tokenInstances) > 1) {
      const moved = this.argmin(this.tokenInstances, schedMemoryOf);
      if (moved !== null) {
        removeFrom(this.tokenInstances, moved);
        this.promptInstances.push(moved);
      }
    } else if (ttft > 0 && tbt / ttft > this.ratioThreshold && this.usableCount(this.promptInstances) > 1) {
      const moved = this.argmin(this.promptInstances, pendingTokensOf);
      if (moved !== null) {
        removeFrom(this.promptInstances, moved);
        this.tokenInstances.push(moved);
      }
    }
  }
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
