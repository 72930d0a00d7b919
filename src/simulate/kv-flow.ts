import type { Clock, EventTarget } from "../core/clock.ts";
import type { Instance } from "../serving/instance.ts";
import type { SimRequest } from "../serving/request.ts";

export interface KvFlowHost {
  readonly clock: Clock;
  kvTransferDone(request: SimRequest): void;
}

const RETRY = 1;
const DONE = 2;

/**
 * One KV-cache shipment from a prefill instance to a decode instance over a dedicated link of the
 * scheduler's bandwidth (upstream's DummyLink: no contention). It starts only when the destination
 * has room for the cache, polling every `retryDelay_s` as upstream does; the source frees its copy
 * when the transfer completes.
 */
export class KvFlow implements EventTarget {
  constructor(
    private readonly host: KvFlowHost,
    readonly request: SimRequest,
    readonly source: Instance,
    readonly destination: Instance,
    readonly bytes: number,
    readonly bandwidth: number,
    private readonly retryDelay_s: number,
  ) {}

  /** Counts polls while the destination was full (reported as KV back-pressure). */
  retries = 0;

  arrive(): void {
    this.tryStart();
  }

  private tryStart(): void {
    const destination = this.destination;
    if (destination.memory + this.request.memory <= destination.maxMemory) {
      const now = this.host.clock.now;
      const transfer = this.request.kvTransfer!;
      transfer.startTime = now;
      destination.allocMemory(this.request.memory);
      this.host.clock.schedule(this.bytes / this.bandwidth, this, DONE);
    } else {
      this.retries++;
      this.host.clock.schedule(this.retryDelay_s, this, RETRY);
    }
  }

  onEvent(kind: number): void {
    if (kind === RETRY) {
      this.tryStart();
      return;
    }
    const request = this.request;
    request.kvTransfer!.completionTime = this.host.clock.now;
    this.source.freeMemory(request.memory);
    this.host.kvTransferDone(request);
    this.source.notifyFlowCompletion();
  }
}
