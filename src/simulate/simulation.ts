import { Clock, type EventTarget } from "../core/clock.ts";
import type { Catalog, ModelSpec } from "../model/catalog.ts";
import type { PerformanceModel } from "../model/performance.ts";
import { Cluster, type ClusterOptions, type ServerGroup, type StartState } from "../serving/cluster.ts";
import { InstanceStatus, type Instance, type InstanceHost } from "../serving/instance.ts";
import { ArrivalRanker, SimRequest, type Task } from "../serving/request.ts";
import type { RequestScheduler } from "../serving/schedulers/scheduler.ts";
import type { RequestSource, TraceRequest } from "../workload/types.ts";
import { KvFlow, type KvFlowHost } from "./kv-flow.ts";
import { DedicatedLinks, SharedNics, type KvNetwork } from "./kv-network.ts";

export interface SimulationSetup {
  readonly catalog: Catalog;
  readonly model: ModelSpec;
  readonly perf: PerformanceModel;
  readonly servers: readonly ServerGroup[];
  readonly startState: StartState;
  readonly scheduler: RequestScheduler;
  readonly cluster: ClusterOptions;
  /** Poll interval of a KV shipment waiting for room at its destination (upstream: 1 s). */
  readonly kvRetryDelay_s: number;
  /** KV shipments share each server's NIC (true) or each gets a private link (upstream). */
  readonly kvLinkContention: boolean;
  /** A KV shipment waiting for room polls every kvRetryDelay_s (upstream) instead of being woken. */
  readonly kvMemoryPolling: boolean;
  /** Stop at this simulated time (requests still in flight are reported unfinished). */
  readonly endTime_s: number;
}

/** Hooks for callers that want per-request or per-iteration detail. */
export interface SimulationObserver {
  requestArrived?(request: SimRequest): void;
  /** The request object is reused for a later arrival once this returns: copy what you keep. */
  requestCompleted?(request: SimRequest, completionTime: number): void;
  iteration?(instance: Instance, start: number, end: number): void;
}

export interface InstanceAccounting {
  readonly id: number;
  readonly label: string;
  readonly tag: string | null;
  readonly sku: string;
  readonly gpus: number;
  /** When the instance was created (its server provisioned). */
  readonly created_s: number;
  /** When it was removed; null when it was still there at the end of the run. */
  readonly removed_s: number | null;
  readonly lifetime_s: number;
  readonly busy_s: number;
  readonly prefill_s: number;
  readonly decode_s: number;
  readonly utilization: number;
  readonly peak_memory_fraction: number;
  readonly preemptions: number;
  readonly memory_stalls: number;
}

/** A provisioned server: what GPU-hours and cost are charged for. */
export interface ServerAccounting {
  readonly id: number;
  readonly sku: string;
  readonly gpus: number;
  readonly created_s: number;
  /** null when the server was still provisioned at the end of the run. */
  readonly removed_s: number | null;
}

export interface SimulationOutcome {
  readonly arrived: number;
  /** Arrival time of the first request (NaN when none arrived). */
  readonly firstArrival_s: number;
  readonly completed: number;
  readonly endTime_s: number;
  readonly events: number;
  readonly instances: readonly InstanceAccounting[];
  readonly servers: readonly ServerAccounting[];
  readonly gpuSeconds: number;
  readonly costUsd: number;
  readonly energyKwh: number;
  readonly kvRetries: number;
  readonly waitingAtEnd: number;
  /** Requests refused because no instance could hold their KV cache. */
  readonly rejected: number;
  /** The run was stopped because nothing could complete any more. */
  readonly stalled: boolean;
  readonly rejectedExamples: readonly number[];
}

const ARRIVAL = 0;
const DRAIN_WAITING = 1;
const WAKE_FLOWS = 2;

/**
 * Wires a workload, a cluster and a scheduler into one discrete-event run. Arrivals are pulled from
 * the source one at a time (a trace of any length streams through), and a request object lives only
 * until it completes.
 */
export class Simulation implements InstanceHost, KvFlowHost, EventTarget {
  readonly clock = new Clock();
  readonly cluster: Cluster;
  readonly scheduler: RequestScheduler;
  private nextArrival: TraceRequest | undefined;
  private readonly waiting: SimRequest[] = [];
  private waitingHead = 0;
  arrived = 0;
  completed = 0;
  /** Requests refused because no instance could ever hold their KV cache (ids of the first few). */
  rejected = 0;
  readonly rejectedExamples: number[] = [];
  /** Cumulative traffic counters (what a gateway in front of the fleet can count). */
  arrivedPromptTokens = 0;
  completedOutputTokens = 0;
  /**
   * Fill each instance's `engineMetrics` (the vLLM-style counters and histograms an autoscaling
   * observer scrapes). Off unless something reads them: they are three histograms per instance, cold
   * at every completion, for nothing in a run without autoscaling.
   */
  recordEngineMetrics = false;
  /** True once the workload has no more requests. */
  sourceExhausted = false;
  private kvRetries = 0;
  private readonly flows = new Set<KvFlow>();
  private readonly network: KvNetwork;

  constructor(
    private readonly setup: SimulationSetup,
    private readonly source: RequestSource,
    private readonly observer: SimulationObserver = {},
  ) {
    this.scheduler = setup.scheduler;
    const bandwidth = setup.scheduler.transferBandwidth;
    // Inside one server a shipment crosses NVLink; the SKU's interconnect bandwidth (GB = 1024^3 B).
    const local = (setup.servers[0] === undefined ? undefined : setup.catalog.skus.get(setup.servers[0].sku))
      ?.interconnect.bandwidth_gbps;
    this.network = setup.kvLinkContention
      ? new SharedNics(this.clock, bandwidth, local === undefined ? bandwidth : local * 1024 ** 3)
      : new DedicatedLinks(this.clock, bandwidth);
    this.cluster = new Cluster(setup.catalog, setup.model, setup.perf, this, setup.cluster);
    for (const instance of this.cluster.build(setup.servers, setup.startState))
      this.scheduler.addInstance(instance);
    if (observer.iteration !== undefined) {
      this.logIteration = (instance, start, end) => observer.iteration?.(instance, start, end);
    }
    this.scheduleNextArrival();
  }

  logIteration?: (instance: Instance, start: number, end: number) => void;

  get inFlight(): number {
    return this.arrived - this.completed;
  }

  get waitingCount(): number {
    return this.waiting.length - this.waitingHead;
  }

  /** Every request of the workload arrived and completed (periodic timers alone do not keep a run going). */
  get finished(): boolean {
    return this.sourceExhausted && this.completed + this.rejected === this.arrived;
  }

  /** Runs until the workload is exhausted and every request finished, or `until_s`. */
  run(until_s = this.setup.endTime_s): void {
    while (this.runSome(65_536, until_s));
  }

  /** Advances by at most `maxEvents` events; returns false when the run is over. */
  runSome(maxEvents: number, until_s = this.setup.endTime_s): boolean {
    const clock = this.clock;
    for (let i = 0; i < maxEvents; i++) {
      if (this.finished) return false;
      if (!clock.step(until_s)) {
        // Stopped by the end time with work still under way (a decode run is one event that may
        // end long after it): the run ends at the end time, so servers are billed and busy time
        // counted up to it, not to the last event before it.
        if (clock.pendingEvents > 0 && clock.now < until_s) clock.advanceTo(until_s);
        return false;
      }
    }
    return !this.checkStall();
  }

  /** Simulated seconds without a completion, after the last arrival, before a run is declared stalled. */
  stallTimeout_s = 3 * 3600;
  /** True when the run was stopped because nothing could complete any more (see `checkStall`). */
  stalled = false;
  private progressCompleted = -1;
  private progressTime = 0;

  /**
   * Guards against runs that cannot end: once every request has arrived, if nothing completes for
   * `stallTimeout_s` of simulated time while timers keep firing (an upstream-compatible KV shipment
   * polling a full decode instance forever, an autoscaler ticking over a fleet that cannot serve),
   * the run stops and reports what is left unfinished.
   */
  private checkStall(): boolean {
    const now = this.clock.now;
    if (this.completed !== this.progressCompleted) {
      this.progressCompleted = this.completed;
      this.progressTime = now;
      return false;
    }
    if (this.sourceExhausted && now - this.progressTime > this.stallTimeout_s) this.stalled = true;
    return this.stalled;
  }

  private scheduleNextArrival(): void {
    this.nextArrival = this.source.next();
    if (this.nextArrival !== undefined) this.clock.scheduleAt(this.nextArrival.arrival_s, this, ARRIVAL);
    else {
      this.sourceExhausted = true;
      this.source.close();
    }
  }

  /** When the next request of the workload arrives (NaN when none is left). */
  get nextArrivalTime(): number {
    return this.nextArrival?.arrival_s ?? Number.NaN;
  }

  /** Arrival time of the oldest request held at the scheduler (NaN when none). */
  get oldestWaitingArrival(): number {
    return this.waitingHead < this.waiting.length ? this.waiting[this.waitingHead]!.arrivalTime : Number.NaN;
  }

  onEvent(kind: number): void {
    if (kind === DRAIN_WAITING) {
      this.drainScheduled = false;
      this.drainWaiting();
      return;
    }
    if (kind === WAKE_FLOWS) {
      this.wakeFlows();
      return;
    }
    const spec = this.nextArrival!;
    const reused = this.finishedRequests.pop();
    const rank = this.arrivalRanks.rankOf(spec.arrival_s);
    const request =
      reused === undefined
        ? new SimRequest(spec.id, spec.arrival_s, rank, spec.prompt_tokens, spec.output_tokens)
        : reused.reuse(spec.id, spec.arrival_s, rank, spec.prompt_tokens, spec.output_tokens);
    if (this.arrived++ === 0) this.firstArrival_s = request.arrivalTime;
    this.arrivedPromptTokens += request.promptTokens;
    this.observer.requestArrived?.(request);
    this.scheduleNextArrival();
    // A request whose KV cache (prompt + output tokens) exceeds every instance can never run: it is
    // refused and counted, instead of waiting forever at the head of a queue.
    const capacity = this.cluster.maxKvTokens;
    if (capacity > 0 && request.promptTokens + request.outputTokens > capacity) {
      this.rejected++;
      if (this.rejectedExamples.length < 5) this.rejectedExamples.push(request.id);
      return;
    }
    if (this.waitingCount > 0) this.enqueue(request);
    else if (!this.dispatch(request)) this.enqueue(request);
  }

  private enqueue(request: SimRequest): void {
    this.waiting.push(request);
  }

  /** Places a request and submits its first task; false when the scheduler has no room. */
  private dispatch(request: SimRequest): boolean {
    const placement = this.scheduler.schedule(request);
    if (placement === null) return false;
    const { prompt, token } = placement;
    prompt.assignedWork++;
    if (prompt !== token) {
      token.assignedWork++;
      request.kvTransfer = {
        source: prompt,
        destination: token,
        bytes: request.promptTokens * prompt.kvBytesPerToken,
        startTime: -1,
        completionTime: -1,
      };
      request.token.instance = token;
      prompt.taskArrival(request.prompt);
    } else {
      request.prompt.chained = request.token;
      prompt.taskArrival(request.prompt);
      prompt.taskArrival(request.token);
    }
    return true;
  }

  /** Retries requests held at the scheduler, oldest first, until one does not fit. */
  drainWaiting(): void {
    while (this.waitingHead < this.waiting.length) {
      const request = this.waiting[this.waitingHead]!;
      if (!this.dispatch(request)) break;
      this.waiting[this.waitingHead++] = undefined as unknown as SimRequest;
      if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
        this.waiting.splice(0, this.waitingHead);
        this.waitingHead = 0;
      }
    }
  }

  // ---- InstanceHost -----------------------------------------------------------------------------

  taskCompleted(task: Task, instance: Instance): void {
    const request = task.request;
    const now = this.clock.now;
    if (task.isPrompt) {
      if (this.recordEngineMetrics) {
        const metrics = instance.engineMetrics;
        metrics.promptTokens += task.size;
        metrics.generationTokens += 1;
        metrics.ttft.observe(now - request.arrivalTime);
      }
      const transfer = request.kvTransfer;
      if (transfer !== null) {
        const flow = new KvFlow(
          this,
          this.network,
          request,
          transfer.source,
          transfer.destination,
          transfer.bytes,
          this.setup.kvMemoryPolling ? this.setup.kvRetryDelay_s : 0,
        );
        this.flows.add(flow);
        this.flowsByRequest.set(request, flow);
        flow.arrive();
      }
      // The prefill left its instance's pending tokens: a request held because that prompt queue
      // was full may fit now, not only when some request finishes (which can be a minute away).
      this.requestDrain();
      return;
    }
    this.finishRequest(request, instance, now);
  }

  private finishRequest(request: SimRequest, instance: Instance, now: number): void {
    instance.assignedWork--;
    if (this.flowsWaitingAt.has(instance)) this.scheduleWake(instance);
    const decodeSteps = request.outputTokens - 1;
    const e2e = now - request.arrivalTime;
    const ttft = request.firstTokenTime - request.arrivalTime;
    if (this.recordEngineMetrics) {
      const metrics = instance.engineMetrics;
      metrics.generationTokens += decodeSteps;
      metrics.requestsCompleted++;
      metrics.e2e.observe(e2e);
      if (decodeSteps > 0) metrics.itl.observe((e2e - ttft) / decodeSteps, decodeSteps);
    }
    if (this.scheduler.observeCompletion !== undefined) {
      const unloaded = instance.perf.unloaded(request.promptTokens);
      const tbt = decodeSteps > 0 ? (e2e - ttft) / decodeSteps : 0;
      this.scheduler.observeCompletion?.(ttft / unloaded.ttft_s, tbt / unloaded.tbt_s);
    }
    this.completed++;
    this.completedOutputTokens += request.outputTokens;
    this.observer.requestCompleted?.(request, now);
    this.requestDrain();
    // Nothing refers to the request any more (its instance let go of its tasks): a later arrival
    // reuses it (see SimRequest).
    this.finishedRequests.push(request);
  }

  private firstArrival_s = Number.NaN;

  private readonly arrivalRanks = new ArrivalRanker();

  /** Finished requests kept for reuse; never more than were in flight at once. */
  private readonly finishedRequests: SimRequest[] = [];

  private drainScheduled = false;

  /**
   * Retries held requests in a separate event at the same time rather than inline, so placing new
   * work never re-enters an instance that is in the middle of completing an iteration.
   */
  requestDrain(): void {
    if (this.drainScheduled || this.waitingCount === 0) return;
    this.drainScheduled = true;
    this.clock.schedule(0, this, DRAIN_WAITING);
  }

  private readonly flowsByRequest = new Map<SimRequest, KvFlow>();
  /** KV shipments waiting for memory, per destination, in arrival order. */
  private readonly flowsWaitingAt = new Map<Instance, KvFlow[]>();
  private readonly instancesToWake = new Set<Instance>();

  waitForRoom(flow: KvFlow): void {
    let waiting = this.flowsWaitingAt.get(flow.destination);
    if (waiting === undefined) this.flowsWaitingAt.set(flow.destination, (waiting = []));
    if (!waiting.includes(flow)) waiting.push(flow);
  }

  /** Memory was freed on `instance`: retry its waiting shipments in a separate event at this time. */
  private scheduleWake(instance: Instance): void {
    if (this.instancesToWake.size === 0) this.clock.schedule(0, this, WAKE_FLOWS);
    this.instancesToWake.add(instance);
  }

  /** Starts waiting shipments oldest first, stopping at the first that still does not fit (no overtaking). */
  private wakeFlows(): void {
    for (const instance of this.instancesToWake) {
      const waiting = this.flowsWaitingAt.get(instance);
      if (waiting === undefined) continue;
      let started = 0;
      while (started < waiting.length) {
        const flow = waiting[started]!;
        waiting[started] = flow; // keep the slot while trying: tryStart re-queues only unknown flows
        if (!flow.tryStart()) break;
        started++;
      }
      waiting.splice(0, started);
      if (waiting.length === 0) this.flowsWaitingAt.delete(instance);
    }
    this.instancesToWake.clear();
  }

  /** ScalingHost: a new or re-activated instance can take the requests held at the scheduler. */
  instanceActivated(_instance: Instance): void {
    // Not inside any instance's iteration (a timer fired), so held requests can be placed right away.
    this.drainWaiting();
  }

  instanceIdle(instance: Instance, blocked: boolean): void {
    if (!blocked) this.scheduler.notifyFreeInstance(instance);
  }

  kvTransferDone(request: SimRequest): void {
    const flow = this.flowsByRequest.get(request);
    if (flow !== undefined) {
      this.kvRetries += flow.retries;
      this.flows.delete(flow);
      this.flowsByRequest.delete(request);
    }
    request.kvTransfer!.source.assignedWork--;
    request.token.instance!.taskArrival(request.token);
    // The shipment freed the prompt instance's KV cache and its request slot: held requests may fit.
    this.requestDrain();
  }

  // ---- results ----------------------------------------------------------------------------------

  outcome(): SimulationOutcome {
    const end = this.clock.now;
    const instances: InstanceAccounting[] = [];
    let energyJoules = 0;
    for (const instance of this.cluster.instances) {
      const lifetime = (instance.removedAt >= 0 ? instance.removedAt : end) - instance.createdAt;
      // Including the batch running at the end (a run stopped by its end time).
      const busy = instance.busyTimeAt(end);
      const { prefill_s: prefill, decode_s: decode } = instance.phaseBusyAt(end);
      const processor = this.setup.catalog.processors.get(instance.name)!;
      // Every GPU of a server draws idle power for the server's lifetime (below); a busy GPU draws
      // its phase's power instead, so each busy second adds the difference.
      energyJoules +=
        instance.numGpus *
        ((processor.power_w.prompt - processor.power_w.idle) * prefill +
          (processor.power_w.token - processor.power_w.idle) * decode);
      instances.push({
        id: instance.id,
        label: instance.label,
        tag: instance.tag,
        sku: instance.sku,
        gpus: instance.numGpus,
        created_s: instance.createdAt,
        removed_s: instance.removedAt >= 0 ? instance.removedAt : null,
        lifetime_s: lifetime,
        busy_s: busy,
        prefill_s: prefill,
        decode_s: decode,
        utilization: lifetime > 0 ? busy / lifetime : 0,
        peak_memory_fraction: instance.peakMemory / instance.maxMemory,
        preemptions: instance.preemptions,
        memory_stalls: instance.memoryStalls,
      });
    }
    let gpuSeconds = 0;
    let costUsd = 0;
    const servers: ServerAccounting[] = [];
    for (const server of this.cluster.servers) {
      servers.push({
        id: server.id,
        sku: server.sku.name,
        gpus: server.sku.gpus,
        created_s: server.createdAt,
        removed_s: server.removedAt >= 0 ? server.removedAt : null,
      });
      const lifetime = (server.removedAt >= 0 ? server.removedAt : end) - server.createdAt;
      gpuSeconds += server.sku.gpus * lifetime;
      costUsd += (server.sku.cost_per_hour_usd * lifetime) / 3600;
      const processor = this.setup.catalog.processors.get(server.sku.processor)!;
      energyJoules += server.sku.gpus * processor.power_w.idle * lifetime;
    }
    let kvRetries = this.kvRetries;
    for (const flow of this.flows) kvRetries += flow.retries;
    return {
      arrived: this.arrived,
      firstArrival_s: this.firstArrival_s,
      completed: this.completed,
      endTime_s: end,
      events: this.clock.eventsProcessed,
      instances,
      servers,
      gpuSeconds,
      costUsd,
      energyKwh: energyJoules / 3.6e6,
      kvRetries,
      waitingAtEnd: this.waitingCount,
      rejected: this.rejected,
      stalled: this.stalled,
      rejectedExamples: [...this.rejectedExamples],
    };
  }

  /** Instances that can take work now. */
  activeInstances(): Instance[] {
    return this.cluster.instances.filter((instance) => instance.status === InstanceStatus.Active);
  }
}
