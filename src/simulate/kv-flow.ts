import type { Clock, EventTarget } from "../core/clock.ts";
import type { Instance } from "../serving/instance.ts";
import type { SimRequest } from "../serving/request.ts";
import type { KvNetwork, NetworkFlow } from "./kv-network.ts";

export interface KvFlowHost {
  readonly clock: Clock;
  kvTransferDone(request: SimRequest): void;
  /** Park `flow` until its destination frees memory (event-driven waiting). */
  waitForRoom(flow: KvFlow): void;
}

/**
 * One KV-cache shipment from a prefill instance to a decode instance. It starts only when the
 * destination has room for the cache: it waits until the destination frees memory, or (upstream)
 * polls every `retryDelay_s`. The network decides how fast it moves; the source frees its copy when
 * the last byte has arrived.
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
    /** Poll interval while the destination is full; 0 = wait to be woken when memory is freed. */
    private readonly retryDelay_s: number,
  ) {
    this.sourceServer = source.serverId;
    this.destinationServer = destination.serverId;
  }

  arrive(): void {
    this.tryStart();
  }

  /** True once the shipment has started (a woken flow that still does not fit waits again). */
  get started(): boolean {
    return this.request.kvTransfer!.startTime >= 0;
  }

  /** Starts the shipment if the destination has room; false when it has to wait. */
  tryStart(): boolean {
    const destination = this.destination;
    // The decode's cache is reserved together with the shipment (unless upstream-compatible), so a
    // decode instance cannot fill with shipped prompts none of whose decodes fit.
    const decode = destination.reserveDecodeUpFront
      ? this.request.token.size * destination.kvBytesPerToken
      : 0;
    if (destination.memory + this.request.memory + decode <= destination.maxMemory) {
      this.request.kvTransfer!.startTime = this.host.clock.now;
      destination.allocMemory(this.request.memory + decode);
      this.reservedDecode = decode;
      this.network.start(this);
      return true;
    }
    this.retries++;
    if (this.retryDelay_s > 0) this.host.clock.schedule(this.retryDelay_s, this);
    else this.host.waitForRoom(this);
    return false;
  }

  /** Retry timer: the destination may have room now. */
  onEvent(): void {
    this.tryStart();
  }

  private reservedDecode = 0;

  transferred(): void {
    const request = this.request;
    request.kvTransfer!.completionTime = this.host.clock.now;
    this.source.freeMemory(request.memory);
    if (this.reservedDecode > 0) {
      request.memory += this.reservedDecode;
      request.token.reserved = true;
    }
    this.host.kvTransferDone(request);
    this.source.notifyFlowCompletion();
  }
}
