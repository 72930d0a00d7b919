import type { Instance } from "../instance.ts";
import type { SimRequest } from "../request.ts";
import { MinIndexTree } from "./load-index.ts";
import { BaseScheduler, pendingRequestsOf, pendingTokensOf, type Placement } from "./scheduler.ts";

/** Co-located schedulers run prefill and decode of a request on one instance. */
abstract class ColocatedScheduler extends BaseScheduler {
  schedule(request: SimRequest): Placement | null {
    const instance = this.pick(request);
    if (instance === null) return null;
    return { prompt: instance, token: instance };
  }

  protected abstract pick(request: SimRequest): Instance | null;
}

export class RandomScheduler extends ColocatedScheduler {
  readonly name = "random";
  protected pick(): Instance | null {
    const usable = this.instances.filter((instance) => this.usable(instance));
    if (usable.length === 0) return null;
    return usable[Math.floor(this.options.random() * usable.length)]!;
  }
}

export class RoundRobinScheduler extends ColocatedScheduler {
  readonly name = "round_robin";
  private nextIndex = 0;
  protected pick(): Instance | null {
    const count = this.instances.length;
    for (let tried = 0; tried < count; tried++) {
      const instance = this.instances[this.nextIndex % count]!;
      this.nextIndex = (this.nextIndex + 1) % count;
      if (this.usable(instance)) return instance;
    }
    return null;
  }
}

/** Join the shortest queue, measured in requests present on the instance. */
export class JsqScheduler extends ColocatedScheduler {
  readonly name = "jsq";
  protected pick(): Instance | null {
    return this.argmin(this.instances, pendingRequestsOf);
  }
}

/** Join the queue with the fewest pending tokens (upstream's Baseline scheduler). */
export class TokenJsqScheduler extends ColocatedScheduler {
  readonly name = "token_jsq";
  /** Instances by schedPendingTokens, so an arrival does not scan the fleet; rebuilt when it changes. */
  private loadTree: MinIndexTree | null = null;
  private readonly loadChanged = (instance: Instance): void => {
    this.loadTree?.set(instance.schedSlot, instance.schedPendingTokens);
  };

  override addInstance(instance: Instance): void {
    super.addInstance(instance);
    this.loadTree = null;
  }

  override removeInstance(instance: Instance): void {
    super.removeInstance(instance);
    instance.schedLoadChanged = null;
    instance.schedSlot = -1;
    this.loadTree = null;
  }

  protected pick(request: SimRequest): Instance | null {
    let instance: Instance | null = null;
    if (this.options.maxRequestsPerInstance === 0) {
      // The overall minimum, when usable, is also the first usable minimum (what argmin returns);
      // otherwise (an instance starting or draining holds it) fall back to the scan.
      const slot = this.tree().min;
      const candidate = slot < 0 ? undefined : this.instances[slot];
      if (candidate !== undefined && this.usable(candidate)) instance = candidate;
    }
    instance ??= this.argmin(this.instances, pendingTokensOf);
    if (instance !== null) {
      instance.schedPendingTokens += request.promptTokens + 1;
      this.loadChanged(instance);
    }
    return instance;
  }

  private tree(): MinIndexTree {
    if (this.loadTree !== null) return this.loadTree;
    const tree = new MinIndexTree(this.instances.length);
    this.instances.forEach((instance, slot) => {
      instance.schedSlot = slot;
      instance.schedLoadChanged = this.loadChanged;
      tree.set(slot, instance.schedPendingTokens);
    });
    return (this.loadTree = tree);
  }
}
