import type { Clock, EventTarget } from "../core/clock.ts";
import { NO_EVENT, type EventHandle } from "../core/event-queue.ts";

/** One KV-cache shipment as the network sees it. */
export interface NetworkFlow {
  readonly sourceServer: number;
  readonly destinationServer: number;
  readonly bytes: number;
  /** Called once when the last byte has arrived. */
  transferred(): void;
}

/** Carries KV-cache shipments between servers. */
export interface KvNetwork {
  start(flow: NetworkFlow): void;
}

/**
 * Upstream splitwise-sim: every shipment gets its own link at the full bandwidth (a DummyLink per
 * request), so shipments never slow each other down.
 */
export class DedicatedLinks implements KvNetwork {
  constructor(
    private readonly clock: Clock,
    private readonly bandwidth: number,
  ) {}

  start(flow: NetworkFlow): void {
    this.clock.schedule(flow.bytes / this.bandwidth, new Completion(flow));
  }
}

class Completion implements EventTarget {
  constructor(private readonly flow: NetworkFlow) {}
  onEvent(): void {
    this.flow.transferred();
  }
}

interface ActiveFlow {
  readonly flow: NetworkFlow;
  remaining: number;
  rate: number;
  handle: EventHandle;
  readonly timer: EventTarget;
}

/**
 * Shipments share each server's network interface: every server sends and receives at most
 * `nicBandwidth` bytes/s, split fairly among the flows leaving (or entering) it, and a flow moves at
 * the smaller of its two shares. Shipments inside one server use the intra-server interconnect at
 * `localBandwidth` (also shared). Rates are recomputed whenever a flow starts or ends, and completion
 * times are moved accordingly; with a handful of concurrent shipments this is cheap.
 *
 * This is splitscale's improvement on upstream (which gives each request a private link): bursts of
 * long prompts finishing together now queue on the decode server's NIC, as they would in a cluster.
 */
export class SharedNics implements KvNetwork {
  private readonly active = new Set<ActiveFlow>();
  private lastUpdate = 0;

  constructor(
    private readonly clock: Clock,
    private readonly nicBandwidth: number,
    private readonly localBandwidth: number,
  ) {}

  start(flow: NetworkFlow): void {
    this.advance();
    const entry: ActiveFlow = {
      flow,
      remaining: flow.bytes,
      rate: 0,
      handle: NO_EVENT,
      timer: { onEvent: () => this.finish(entry) },
    };
    this.active.add(entry);
    this.reschedule();
  }

  /** Bytes moved since the last change, at the rates that held in between. */
  private advance(): void {
    const now = this.clock.now;
    const elapsed = now - this.lastUpdate;
    if (elapsed > 0)
      for (const entry of this.active) entry.remaining = Math.max(0, entry.remaining - entry.rate * elapsed);
    this.lastUpdate = now;
  }

  private finish(entry: ActiveFlow): void {
    this.advance();
    this.active.delete(entry);
    entry.handle = NO_EVENT;
    this.reschedule();
    entry.flow.transferred();
  }

  private reschedule(): void {
    const sending = new Map<number, number>();
    const receiving = new Map<number, number>();
    const local = new Map<number, number>();
    for (const { flow } of this.active) {
      if (flow.sourceServer === flow.destinationServer) {
        local.set(flow.sourceServer, (local.get(flow.sourceServer) ?? 0) + 1);
      } else {
        sending.set(flow.sourceServer, (sending.get(flow.sourceServer) ?? 0) + 1);
        receiving.set(flow.destinationServer, (receiving.get(flow.destinationServer) ?? 0) + 1);
      }
    }
    for (const entry of this.active) {
      const { flow } = entry;
      const rate =
        flow.sourceServer === flow.destinationServer
          ? this.localBandwidth / local.get(flow.sourceServer)!
          : Math.min(
              this.nicBandwidth / sending.get(flow.sourceServer)!,
              this.nicBandwidth / receiving.get(flow.destinationServer)!,
            );
      if (rate === entry.rate && entry.handle !== NO_EVENT) continue;
      entry.rate = rate;
      if (entry.handle !== NO_EVENT) this.clock.cancel(entry.handle);
      entry.handle = this.clock.schedule(entry.remaining / rate, entry.timer);
    }
  }
}
