import type { Clock, EventTarget } from "../core/clock.ts";
import type { Instance } from "../serving/instance.ts";
import type { SimRequest } from "../serving/request.ts";
import type { KvNetwork, NetworkFlow } from "./kv-network.ts";

export interface KvFlowHost {
  readonly clock: Clock;
  kvTransferDone(request: SimRequest): void;
}

/**
 * One KV-cache shipment from a prefill instance to a decode instance. It starts only when the
 * destination has room for the cache, polling every `retryDelay_s` as upstream does; the network
 * decides how fast it moves; the source frees its copy when the last byte has arrived.
 */
export class KvFlow implements EventTarget, NetworkFlow {
  /** Counts polls while the destination was full (reported as KV back-pressure). */
  retries = 0;
  readonly sourceServer: number;
  readonly destinationServer: number;

  constructor(
    private readonly host: KvFlowHost,
    private readonly network: KvNetwork,
    readonly request: SimRequest,
    readonly source: Instance,
    readonly destination: Instance,
    readonly bytes: number,
    private readonly retryDelay_s: number,
  ) {
    this.sourceServer = source.serverId;
    this.destinationServer = destination.serverId;
  }

  arrive(): void {
    this.tryStart();
  }

  private tryStart(): void {
    const destination = this.destination;
    if (destination.memory + this.request.memory <= destination.maxMemory) {
      this.request.kvTransfer!.startTime = this.host.clock.now;
      destination.allocMemory(this.request.memory);
      this.network.start(this);
    } else {
      this.retries++;
      this.host.clock.schedule(this.retryDelay_s, this);
    }
  }

  /** Retry timer: the destination may have room now. */
  onEvent(): void {
    this.tryStart();
  }

  transferred(): void {
    const request = this.request;
    request.kvTransfer!.completionTime = this.host.clock.now;
    this.source.freeMemory(request.memory);
    this.host.kvTransferDone(request);
    this.source.notifyFlowCompletion();
  }
}
