import type { Instance } from "../instance.ts";
import type { SimRequest } from "../request.ts";
import { MixedPoolScheduler } from "./mixed-pool.ts";
import { pendingTokensOf, schedMemoryOf, type Placement, type SchedulerOptions } from "./scheduler.ts";

/**
 * Schedulers of the DRL fork of splitwise-sim that treat every instance as able to run either phase
 * (spec §3.6 and §3.8). Both keep mixed_pool's load counters (`book`). The fork's LyapunovScheduler
 * (§3.7) is not ported: it never runs a request there (its `schedule` returns nothing).
 */

/**
 * `all_mixed_pool` (the fork's SeparateMixedScheduler): every instance, whatever its role, is in one
 * mixed pool for good. Prefill goes to the instance with the fewest pending tokens unless its queue is
 * long, decode to the one with the least reserved memory unless it is full; when either is refused
 * the request runs co-located on the instance with the fewest pending tokens.
 */
export class AllMixedPoolScheduler extends MixedPoolScheduler {
  constructor(options: SchedulerOptions) {
    super(options, "all_mixed_pool");
  }

  override addInstance(instance: Instance): void {
    this.instances.push(instance);
    this.mixedInstances.push(instance);
    instance.schedTag = "mixed";
  }

  override schedule(request: SimRequest): Placement | null {
    const pool = this.mixedInstances;
    let prompt = this.bestPrompt(pool, request);
    let token = this.bestToken(pool, request);
    if (prompt === null || token === null) {
      const fallback = this.argmin(pool, pendingTokensOf);
      if (fallback === null) return null;
      prompt = token = fallback;
    }
    this.book(request, prompt, token);
    return { prompt, token };
  }

  /** Instances stay mixed (mixed_pool would return a borrowed instance to its own pool here). */
  override notifyFreeInstance(_instance: Instance): void {}
}

/** The fork's UnifiedFluidScheduler cost weights (`calculate_cost_`, the one it uses). */
const QUEUE_WEIGHT = 0.01;
const TRANSFER_WEIGHT = 0.1;
const PREFILL_WEIGHT = 0.0005;
const DECODE_WEIGHT = 0.001;
/** Cost factor for running a phase next to the other phase's work (interference_penalty 0.2). */
const INTERFERENCE = 1.2;

/**
 * `unified_pool` (the fork's UnifiedFluidScheduler): one pool; every ordered (prefill, decode) pair
 * of usable instances, taken from a fresh random permutation, whose free memory admits the request is
 * costed by queue lengths, KV-shipment time and interference between phases, and the cheapest wins
 * (the first in permutation order on ties). When no pair admits it the request waits at the
 * scheduler. O(instances²) per request, as in the fork.
 */
export class UnifiedPoolScheduler extends MixedPoolScheduler {
  private readonly order: Instance[] = [];

  constructor(options: SchedulerOptions) {
    super(options, "unified_pool");
  }

  override schedule(request: SimRequest): Placement | null {
    const order = this.order;
    order.length = 0;
    for (const instance of this.instances) if (this.usable(instance)) order.push(instance);
    // Fisher-Yates on the run's seeded stream (the fork uses numpy's unseeded permutation).
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(this.options.random() * (i + 1));
      const swap = order[i]!;
      order[i] = order[j]!;
      order[j] = swap;
    }
    let best: Placement | null = null;
    let bestCost = Infinity;
    for (const prompt of order) {
      const promptNeed = (request.promptTokens + 1) * prompt.kvBytesPerToken;
      if (freeMemory(prompt) < promptNeed) continue;
      for (const token of order) {
        const tokenNeed = (request.promptTokens + request.outputTokens) * token.kvBytesPerToken;
        if (freeMemory(token) < tokenNeed) continue;
        const cost = this.cost(request, prompt, token);
        if (cost < bestCost) {
          bestCost = cost;
          best = { prompt, token };
        }
      }
    }
    if (best === null) return null;
    this.book(request, best.prompt, best.token);
    return best;
  }

  private cost(request: SimRequest, prompt: Instance, token: Instance): number {
    let cost = QUEUE_WEIGHT * (prompt.pendingRequests.length + token.pendingRequests.length);
    if (prompt !== token)
      cost += (TRANSFER_WEIGHT * request.promptTokens * prompt.kvBytesPerToken) / this.transferBandwidth;
    cost += PREFILL_WEIGHT * request.promptTokens * (hasDecodeWork(prompt) ? INTERFERENCE : 1);
    cost += DECODE_WEIGHT * (hasPrefillWork(token) ? INTERFERENCE : 1);
    return cost;
  }

  /** Every instance stays in the one pool. */
  override notifyFreeInstance(_instance: Instance): void {}
}

/** Memory the scheduler believes is free on `instance` (upstream max_memory - sched_memory). */
function freeMemory(instance: Instance): number {
  return instance.maxMemory - schedMemoryOf(instance);
}

/** The instance runs or queues decode tasks. */
function hasDecodeWork(instance: Instance): boolean {
  return instance.tokenTasksInBatch > 0 || instance.pendingQueue.length > instance.pendingPromptQueue.length;
}

/** The instance runs or queues prefill tasks. */
function hasPrefillWork(instance: Instance): boolean {
  return instance.promptTasksInBatch > 0 || instance.pendingPromptQueue.length > 0;
}
