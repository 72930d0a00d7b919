/**
 * The simulator's own `Instance` (continuous batching, KV-cache admission, Splitwise/ORCA batch
 * selection, preemption) driven on wall time, so the emulated engine times tokens exactly as a
 * simulated instance would under the same arrivals.
 *
 * How it runs: a private `Clock` holds the instance's iteration events. Emulated time is wall time
 * since start times `timeScale` (a `timeScale` of 10 is a GPU ten times faster). Before anything
 * touches the instance, `advance()` fires the events due by now and sets the clock to now; then one
 * Node timer is armed for the next event or the next token boundary. A request is a `SimRequest`
 * submitted as the simulator's co-located scheduler does (prefill task chained with its decode task).
 *
 * Tokens: the instance folds runs of identical decode iterations into one event ("contiguous
 * iterations"); token k of such a run is produced at `runStart + k × iterationDuration`. The run start
 * is taken when the instance asks the performance model for the iteration time (the clock reads the
 * start then), so every token gets its exact emulated time, whatever the timer's jitter; it is
 * delivered once wall time has passed it. The first token is the prefill's completion.
 *
 * Latencies reported (`/metrics` and `onToken` times) are in wall seconds: emulated seconds divided by
 * `timeScale`.
 */
import { Clock } from "../../core/clock.ts";
import type { IterationShape, IterationTimeModel } from "../../model/performance.ts";
import { E2E_BUCKETS_S, Histogram, ITL_BUCKETS_S, TTFT_BUCKETS_S } from "../../serving/engine-metrics.ts";
import { Instance, type BatchingConfig, type InstanceHost } from "../../serving/instance.ts";
import { ArrivalRanker, SimRequest, type Task } from "../../serving/request.ts";
import type { Hardware } from "./hardware.ts";

export interface TokenListener {
  /** Called once per output token, in order; `index` is 1-based, `time_s` the token's wall time (s since engine start). */
  onToken(index: number, time_s: number): void;
  onDone(): void;
  /** The engine shut down before the request finished. */
  onAbort?(reason: string): void;
}

export interface EmulatorOptions {
  readonly hardware: Hardware;
  readonly batching: BatchingConfig;
  readonly timeScale: number;
  /** Monotonic wall clock in milliseconds (injectable for tests). */
  readonly nowMs?: () => number;
  /** KV cache of a request's decode reserved with its prefill (the simulator's default: true). */
  readonly reserveDecodeUpFront?: boolean;
}

interface LiveRequest {
  readonly request: SimRequest;
  readonly listener: TokenListener;
  /** Output tokens delivered so far. */
  emitted: number;
  /** Emulated time of the last delivered token (or arrival). */
  lastTokenTime: number;
  /** Emulated times of tokens computed but not yet delivered (their wall time is still ahead). */
  readonly pending: number[];
  done: boolean;
}

/** Wraps the performance model to learn when each run of iterations starts. */
class RunStartProbe implements IterationTimeModel {
  runStart = 0;
  constructor(
    private readonly inner: IterationTimeModel,
    private readonly clock: Clock,
  ) {}
  iterationTime(shape: IterationShape): number {
    this.runStart = this.clock.now;
    return this.inner.iterationTime(shape);
  }
  unloaded(promptTokens: number): { ttft_s: number; tbt_s: number } {
    return this.inner.unloaded(promptTokens);
  }
}

const BUSY_WINDOW_S = 5;

export class EmulatedEngine implements InstanceHost {
  readonly clock = new Clock();
  readonly instance: Instance;
  readonly timeScale: number;
  private readonly probe: RunStartProbe;
  private readonly nowMs: () => number;
  private readonly startMs: number;
  private readonly live = new Map<SimRequest, LiveRequest>();
  private nextId = 0;
  private readonly arrivalRanks = new ArrivalRanker();
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private timerAt = Infinity;
  private closed = false;

  // What /metrics reports (wall seconds).
  readonly ttft = new Histogram(TTFT_BUCKETS_S);
  readonly itl = new Histogram(ITL_BUCKETS_S);
  readonly e2e = new Histogram(E2E_BUCKETS_S);
  promptTokens = 0;
  generationTokens = 0;
  requestsCompleted = 0;
  /** Busy samples (emulated time, busy emulated seconds) for the utilization gauge. */
  private readonly busySamples: { t: number; busy: number }[] = [];

  constructor(private readonly options: EmulatorOptions) {
    if (!(options.timeScale > 0)) throw new Error(`time scale must be > 0, got ${options.timeScale}`);
    this.timeScale = options.timeScale;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.startMs = this.nowMs();
    const hw = options.hardware;
    this.probe = new RunStartProbe(hw.perf, this.clock);
    this.instance = new Instance(
      0,
      hw.processor,
      null,
      hw.processor,
      0,
      hw.tensorParallelism,
      hw.maxMemoryBytes,
      hw.weightsBytes,
      hw.kvBytesPerToken,
      options.batching,
      this.probe,
      hw.tensorParallelism,
      this,
    );
    // Match the simulator's default KV accounting where the Instance offers the choice (a prefill
    // reserves its decode's cache up front unless compat.kv_reserve_at_decode_start).
    const kv = this.instance as Instance & { reserveDecodeUpFront?: boolean };
    if ("reserveDecodeUpFront" in kv) kv.reserveDecodeUpFront = options.reserveDecodeUpFront ?? true;
  }

  /** Emulated seconds since the engine started. */
  emulatedNow(): number {
    return ((this.nowMs() - this.startMs) / 1000) * this.timeScale;
  }

  /** Largest prompt + output a request may have: what the KV cache holds (plus the extra slot the simulator reserves). */
  get maxTotalTokens(): number {
    return this.options.hardware.maxKvTokens - 1;
  }

  /** Requests accepted and not finished. */
  get inFlight(): number {
    return this.live.size;
  }

  get running(): number {
    return this.instance.batch.length;
  }

  get waiting(): number {
    return Math.max(0, this.live.size - this.instance.batch.length);
  }

  get kvCacheUsage(): number {
    return Math.min(1, Math.max(0, this.instance.kvCacheUsage));
  }

  /** Prompt tokens queued or in prefill. */
  get pendingPrefillTokens(): number {
    return this.instance.outstandingPrefillTokens;
  }

  get preemptions(): number {
    return this.instance.preemptions;
  }

  /** Brings the instance up to now and delivers what is due (before reading its state). */
  sync(): void {
    if (this.closed) return;
    this.advance();
    this.afterChange();
  }

  /** Busy GPU seconds so far, in wall seconds. */
  busySeconds(): number {
    this.sync();
    return this.instance.busyTimeAt(this.clock.now) / this.timeScale;
  }

  /** GPU busy fraction over the last few (wall) seconds, in percent. */
  utilizationPercent(): number {
    this.sync();
    const now = this.clock.now;
    const busy = this.instance.busyTimeAt(now);
    const samples = this.busySamples;
    samples.push({ t: now, busy });
    const window = BUSY_WINDOW_S * this.timeScale;
    while (samples.length > 2 && samples[1]!.t <= now - window) samples.shift();
    const first = samples[0]!;
    const span = now - first.t;
    if (span <= 0) return this.instance.batch.length > 0 ? 100 : 0;
    return Math.min(100, Math.max(0, ((busy - first.busy) / span) * 100));
  }

  /** Submits a request; tokens are reported to `listener` as wall time reaches them. */
  submit(promptTokens: number, outputTokens: number, listener: TokenListener): void {
    if (this.closed) throw new Error("engine is shut down");
    this.advance();
    const now = this.clock.now;
    const request = new SimRequest(
      this.nextId++,
      now,
      this.arrivalRanks.rankOf(now),
      promptTokens,
      outputTokens,
    );
    this.live.set(request, { request, listener, emitted: 0, lastTokenTime: now, pending: [], done: false });
    // As the simulator's co-located placement does: prefill and decode on one instance, chained.
    request.prompt.chained = request.token;
    this.instance.assignedWork++;
    this.instance.taskArrival(request.prompt);
    this.instance.taskArrival(request.token);
    this.afterChange();
  }

  /** Fires what is due by now (or by `atLeast`, emulated seconds), and sets the clock there. */
  private advance(atLeast = 0): void {
    const now = Math.max(this.emulatedNow(), atLeast);
    if (now > this.clock.now) {
      this.clock.run(now);
      if (this.clock.now < now) this.clock.now = now;
    }
  }

  private afterChange(): void {
    this.paceRunningDecodes();
    this.deliverDue();
    this.arm();
  }

  private onTimer(target = 0): void {
    this.timer = undefined;
    this.immediate = undefined;
    this.timerAt = Infinity;
    if (this.closed) return;
    this.advance(target);
    this.afterChange();
  }

  /** Tokens of the decode run in progress whose time has passed are computed now (not at the run's end). */
  private paceRunningDecodes(): void {
    const instance = this.instance;
    const d = instance.iterationDuration;
    if (!(d > 0) || instance.promptTasksInBatch > 0) return;
    const now = this.clock.now;
    const start = this.probe.runStart;
    const done = Math.floor((now - start) / d + 1e-9);
    if (done <= 0) return;
    for (const task of instance.batch) {
      if (task.isPrompt) continue;
      const live = this.live.get(task.request);
      if (live === undefined) continue;
      const upTo = Math.min(task.generatingTokens, done);
      this.computeTokens(live, 1 + task.generatedTokens, upTo, start, d);
    }
  }

  /**
   * Computes decode tokens `base + 1 .. base + count` of a run starting at `start` with step `d`.
   * Never more than the request's output tokens, never earlier than the previous token: the
   * simulator's Instance gives a 0-token decode task (output_tokens = 1) one token in a batch with a
   * prefill and then a run of -1 iterations; the emulator must not turn that into a second token.
   */
  private computeTokens(live: LiveRequest, base: number, count: number, start: number, d: number): void {
    const limit = live.request.outputTokens;
    let known = live.emitted + live.pending.length;
    for (let i = 1; i <= count; i++) {
      const index = base + i;
      if (index <= known) continue;
      if (index > limit) return;
      const previous = live.pending[live.pending.length - 1] ?? live.lastTokenTime;
      live.pending.push(Math.max(previous, start + i * d));
      known++;
    }
  }

  /** Hands over every computed token whose emulated time has passed. */
  private deliverDue(): void {
    const now = this.clock.now + 1e-9;
    for (const live of this.live.values()) this.deliver(live, now);
  }

  private deliver(live: LiveRequest, upTo: number): void {
    while (live.pending.length > 0 && live.pending[0]! <= upTo) {
      const time = live.pending.shift()!;
      live.emitted++;
      if (live.emitted > 1) this.itl.observe((time - live.lastTokenTime) / this.timeScale);
      live.lastTokenTime = time;
      this.generationTokens++;
      live.listener.onToken(live.emitted, time / this.timeScale);
    }
    if (live.done && live.pending.length === 0) {
      this.live.delete(live.request);
      live.listener.onDone();
    }
  }

  private arm(): void {
    if (this.closed) return;
    let next = this.clock.nextEventTime();
    for (const live of this.live.values()) {
      const head = live.pending[0];
      if (head !== undefined && head < next) next = head;
    }
    const instance = this.instance;
    const d = instance.iterationDuration;
    if (d > 0 && instance.promptTasksInBatch === 0 && instance.batch.length > 0) {
      const start = this.probe.runStart;
      const boundary = start + (Math.floor((this.clock.now - start) / d + 1e-9) + 1) * d;
      if (boundary < next) next = boundary;
    }
    if (!Number.isFinite(next)) return;
    const wallMs = this.startMs + (next / this.timeScale) * 1000;
    if ((this.timer !== undefined || this.immediate !== undefined) && this.timerAt <= wallMs + 0.25) return;
    this.clearTimer();
    this.timerAt = wallMs;
    const delay = wallMs - this.nowMs();
    // Node's timers cannot wait less than 1 ms: what is due sooner fires on the next turn of the
    // event loop, up to 1 ms early in wall time (token times themselves stay exact).
    if (delay < 1) this.immediate = setImmediate(() => this.onTimer(next));
    else this.timer = setTimeout(() => this.onTimer(), delay);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  // ---- InstanceHost -------------------------------------------------------------------------------

  /** Called before an instance's run completes: computes that run's decode tokens at their exact times. */
  logIteration(instance: Instance, start: number, end: number): void {
    if (instance.promptTasksInBatch > 0) {
      // A mixed iteration: its decode tasks produce one token each, at its end.
      for (const task of instance.batch) {
        if (task.isPrompt) continue;
        const live = this.live.get(task.request);
        if (live !== undefined)
          this.computeTokens(live, 1 + task.generatedTokens, task.generatingTokens, start, end - start);
      }
      return;
    }
    const runs = instance.numContiguousIterations;
    const d = runs > 0 ? (end - start) / runs : 0;
    for (const task of instance.batch) {
      if (task.isPrompt) continue;
      const live = this.live.get(task.request);
      if (live !== undefined)
        this.computeTokens(live, 1 + task.generatedTokens, task.generatingTokens, start, d);
    }
  }

  taskCompleted(task: Task, instance: Instance): void {
    const request = task.request;
    const live = this.live.get(request);
    const now = this.clock.now;
    if (task.isPrompt) {
      this.promptTokens += task.size;
      this.ttft.observe((now - request.arrivalTime) / this.timeScale);
      if (live !== undefined && live.emitted + live.pending.length === 0) live.pending.push(now);
      return;
    }
    instance.assignedWork--;
    this.requestsCompleted++;
    this.e2e.observe((now - request.arrivalTime) / this.timeScale);
    if (live === undefined) return;
    // Every token has its time by now (decode tokens were computed in logIteration).
    while (live.emitted + live.pending.length < request.outputTokens) live.pending.push(now);
    live.done = true;
  }

  instanceIdle(): void {
    // Nothing to do: work that does not fit waits in the instance's queue, as in the simulator.
  }

  /** Stops the timer; requests in flight are aborted (their listeners told why). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    const live = [...this.live.values()];
    this.live.clear();
    for (const entry of live) entry.listener.onAbort?.("engine shut down");
  }
}
