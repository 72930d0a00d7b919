import { InstanceStatus, type Instance } from "../instance.ts";
import type { SimRequest } from "../request.ts";

/** Where a request's prefill and decode run; the same instance means co-located (no KV shipment). */
export interface Placement {
  readonly prompt: Instance;
  readonly token: Instance;
}

/** Options every scheduler may read; defaults are the corrected behaviour. */
export interface SchedulerOptions {
  /** GB/s (x 1024^3 B/s) for KV-cache shipments, as upstream's transfer_bandwidth. */
  readonly transferBandwidthGBps: number;
  readonly promptMaxPendingBatchTokens: number;
  /** mixed_pool: when a pool is saturated, borrow an instance from the other pool (upstream) or queue. */
  readonly onSaturation: "borrow" | "queue" | "hold";
  /** Reproduce upstream's kv_token_jsq, which never updates its load counters (and ships 10x faster). */
  readonly kvTokenJsqUpstream: boolean;
  /** Reproduce upstream schedulers that place work on instances that are starting or draining. */
  readonly ignoreInstanceStatus: boolean;
  /** Requests an instance may hold at once before new ones wait at the scheduler (0 = unlimited). */
  readonly maxRequestsPerInstance: number;
  /** Uniform random numbers in [0, 1) from the run's seeded stream. */
  readonly random: () => number;
}

/**
 * Places requests on instances. Implementations keep upstream's load counters on the instances
 * (schedPendingTokens, schedMemory) so selection matches splitwise-sim, and only ever pick ACTIVE
 * instances unless `ignoreInstanceStatus` reproduces upstream.
 */
export interface RequestScheduler {
  readonly name: string;
  /** Bytes per second of a KV-cache shipment scheduled by this scheduler. */
  readonly transferBandwidth: number;
  addInstance(instance: Instance): void;
  removeInstance(instance: Instance): void;
  /** A placement, or null when no instance can take the request now (it waits at the scheduler). */
  schedule(request: SimRequest): Placement | null;
  /** An instance ran out of work (its new iteration is empty). */
  notifyFreeInstance(instance: Instance): void;
  /** A request finished: latency over its unloaded latency (for schedulers that adapt to it). */
  observeCompletion?(ttftSlowdown: number, tbtSlowdown: number): void;
  /** Every instance this scheduler knows, in insertion order. */
  readonly instances: readonly Instance[];
}

export abstract class BaseScheduler implements RequestScheduler {
  abstract readonly name: string;
  readonly instances: Instance[] = [];
  readonly transferBandwidth: number;

  constructor(protected readonly options: SchedulerOptions) {
    this.transferBandwidth = options.transferBandwidthGBps * 1024 ** 3;
  }

  addInstance(instance: Instance): void {
    this.instances.push(instance);
  }

  removeInstance(instance: Instance): void {
    removeFrom(this.instances, instance);
  }

  abstract schedule(request: SimRequest): Placement | null;

  notifyFreeInstance(_instance: Instance): void {}

  /**
   * Whether this scheduler reproduces upstream's blindness to instance status when
   * `ignoreInstanceStatus` is set: mixed_pool, all_mixed_pool, unified_pool and the kv_* schedulers
   * are (the DRL fork filters random, round_robin, jsq, token_jsq and adaptive_mixed_pool to ACTIVE
   * instances).
   */
  protected get statusBlindUpstream(): boolean {
    return false;
  }

  protected usable(instance: Instance): boolean {
    const live =
      this.options.ignoreInstanceStatus && this.statusBlindUpstream
        ? instance.status !== InstanceStatus.Removed
        : instance.status === InstanceStatus.Active;
    const limit = this.options.maxRequestsPerInstance;
    return live && (limit === 0 || instance.assignedWork < limit);
  }

  /** First usable instance with the smallest key (list order breaks ties, as Python's min). */
  protected argmin(pool: readonly Instance[], key: (instance: Instance) => number): Instance | null {
    let best: Instance | null = null;
    let bestKey = Infinity;
    for (const instance of pool) {
      if (!this.usable(instance)) continue;
      const value = key(instance);
      if (best === null || value < bestKey) {
        best = instance;
        bestKey = value;
      }
    }
    return best;
  }

  protected usableCount(pool: readonly Instance[]): number {
    let count = 0;
    for (const instance of pool) if (this.usable(instance)) count++;
    return count;
  }
}

export function removeFrom<T>(list: T[], item: T): boolean {
  const index = list.indexOf(item);
  if (index < 0) return false;
  list.splice(index, 1);
  return true;
}

export const pendingTokensOf = (instance: Instance): number => instance.schedPendingTokens;
export const schedMemoryOf = (instance: Instance): number => instance.schedMemory;
export const pendingRequestsOf = (instance: Instance): number => instance.pendingRequests.length;
