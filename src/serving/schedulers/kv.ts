import type { Instance } from "../instance.ts";
import type { SimRequest } from "../request.ts";
import {
  BaseScheduler,
  pendingRequestsOf,
  pendingTokensOf,
  removeFrom,
  type Placement,
  type SchedulerOptions,
} from "./scheduler.ts";

/** Schedulers that run prefill on a prompt pool and ship the KV cache to a token pool. */
export abstract class KvScheduler extends BaseScheduler {
  readonly promptInstances: Instance[] = [];
  readonly tokenInstances: Instance[] = [];

  protected override get statusBlindUpstream(): boolean {
    return true;
  }

  override addInstance(instance: Instance): void {
    super.addInstance(instance);
    if (instance.tag === "token") this.tokenInstances.push(instance);
    else this.promptInstances.push(instance);
  }

  override removeInstance(instance: Instance): void {
    super.removeInstance(instance);
    removeFrom(this.promptInstances, instance);
    removeFrom(this.tokenInstances, instance);
  }
}

export class KvRoundRobinScheduler extends KvScheduler {
  private promptIndex = 0;
  private tokenIndex = 0;

  constructor(
    options: SchedulerOptions,
    readonly name = "kv_round_robin",
  ) {
    super(options);
  }

  schedule(): Placement | null {
    const prompt = this.nextUsable(this.promptInstances, "prompt");
    const token = this.nextUsable(this.tokenInstances, "token");
    if (prompt === null || token === null) return null;
    return { prompt, token };
  }

  private nextUsable(pool: Instance[], which: "prompt" | "token"): Instance | null {
    for (let tried = 0; tried < pool.length; tried++) {
      const index = which === "prompt" ? this.promptIndex : this.tokenIndex;
      const instance = pool[index % pool.length]!;
      const next = (index + 1) % pool.length;
      if (which === "prompt") this.promptIndex = next;
      else this.tokenIndex = next;
      if (this.usable(instance)) return instance;
    }
    return null;
  }
}

export class KvJsqScheduler extends KvScheduler {
  constructor(
    options: SchedulerOptions,
    readonly name = "kv_jsq",
  ) {
    super(options);
  }

  schedule(): Placement | null {
    const prompt = this.argmin(this.promptInstances, pendingRequestsOf);
    const token = this.argmin(this.tokenInstances, pendingRequestsOf);
    if (prompt === null || token === null) return null;
    return { prompt, token };
  }
}

/**
 * Least pending tokens in each pool. Upstream never increments the counters it compares (they only
 * decrease at completions, so they go negative and the choice degenerates); by default we count the
 * prompt tokens and the decode task at scheduling time, like mixed_pool.
 */
export class KvTokenJsqScheduler extends KvScheduler {
  constructor(
    options: SchedulerOptions,
    readonly name = "kv_token_jsq",
  ) {
    super(options);
  }

  schedule(request: SimRequest): Placement | null {
    const prompt = this.argmin(this.promptInstances, pendingTokensOf);
    const token = this.argmin(this.tokenInstances, pendingTokensOf);
    if (prompt === null || token === null) return null;
    if (!this.options.kvTokenJsqUpstream) {
      prompt.schedPendingTokens += request.promptTokens;
      token.schedPendingTokens += 1;
    }
    return { prompt, token };
  }
}
