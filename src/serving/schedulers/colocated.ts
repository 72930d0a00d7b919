import type { Instance } from "../instance.ts";
import type { SimRequest } from "../request.ts";
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
  protected pick(request: SimRequest): Instance | null {
    const instance = this.argmin(this.instances, pendingTokensOf);
    if (instance !== null) instance.schedPendingTokens += request.promptTokens + 1;
    return instance;
  }
}
