import type { Clock, EventTarget } from "../core/clock.ts";
import { ScratchList, insertAtIndex, removeItem } from "../core/arrays.ts";
import { selectOrcaBatch, selectSplitwiseBatch } from "./batch-selection.ts";
import { NO_EVENT, type EventHandle } from "../core/event-queue.ts";
import type { IterationShape, IterationTimeModel } from "../model/performance.ts";
import { EngineMetrics } from "./engine-metrics.ts";
import { FinishHeap } from "./finish-heap.ts";
import { RequestsByArrival } from "./requests-by-arrival.ts";
import { TaskState, isPending, type SimRequest, type Task } from "./request.ts";

export type InstanceRole = "prompt" | "token" | null;
export type BatchingKind = "orca" | "splitwise";

/** Lifecycle of an instance; schedulers place work only on ACTIVE ones. */
export const enum InstanceStatus {
  ScalingUp = 0,
  Active = 1,
  Draining = 2,
  Removed = 3,
}

export interface BatchingConfig {
  readonly kind: BatchingKind;
  readonly maxBatchSize: number;
  /** Token budget per iteration (Infinity for ORCA). */
  readonly maxBatchTokens: number;
  /** Iterations a task may wait before it is admitted first (Splitwise batching). */
  readonly maxPreemptions: number;
}

/** What an instance reports back to the cluster it lives in. */
export interface InstanceHost {
  readonly clock: Clock;
  taskCompleted(task: Task, instance: Instance): void;
  /** The instance found nothing to run; `blocked` is true when work waits but does not fit. */
  instanceIdle(instance: Instance, blocked: boolean): void;
  logIteration?(instance: Instance, start: number, end: number): void;
}

/** Slots of `Instance.reals`. */
const enum Real {
  MaxMemory = 0,
  WeightsBytes = 1,
  Memory = 2,
  PeakMemory = 3,
  SchedMemory = 4,
  LastServedAt = 5,
  IterationDuration = 6,
  IterationEventTime = 7,
  IterationStartedAt = 8,
  BusyTime = 9,
  RunTimestamp = 10,
  PrefillBusyTime = 11,
  DecodeBusyTime = 12,
  Count = 13,
}

/** Python's float floor division (`a // b`), needed to split contiguous iterations exactly as upstream. */
function pythonFloorDiv(a: number, b: number): number {
  const mod = a % b;
  let div = (a - mod) / b;
  if (mod !== 0 && b < 0 !== mod < 0) div -= 1;
  if (div === 0) return 0;
  let floored = Math.floor(div);
  if (div - floored > 0.5) floored += 1;
  return floored;
}

/**
 * A model replica on a set of GPUs running iteration-level continuous batching (ORCA, or Splitwise's
 * variant with a token budget and starvation-based priority). Runs of identical decode iterations are
 * simulated as one event ("contiguous iterations") and split at an iteration boundary when new work
 * must join the batch.
 */
export class Instance implements EventTarget {
  // Numeric fields that change during a run have a number initializer even when the constructor
  // sets them: a bare declaration starts the field as `undefined` (ES class fields), and V8 then
  // stores every later fractional value in a newly allocated box, with a write barrier, instead of
  // overwriting it in place (see the note in request.ts).
  status = InstanceStatus.Active;
  /** When the instance entered its current status. */
  statusSince = 0;
  /** Autoscaling pool this instance belongs to ("prefill", "decode", "mixed" or a configured name). */
  pool = "";
  /**
   * Parts of requests placed on this instance that are not finished here yet: +1 per placement of a
   * prefill or decode, -1 when that part completes (a prefill that ships its KV cache completes when
   * the shipment has left). A draining instance can be removed once this reaches 0.
   */
  assignedWork = 0;
  /** Prompt tokens placed here whose prefill has not completed (queued or running). */
  outstandingPrefillTokens = 0;
  readonly engineMetrics = new EngineMetrics();
  /** Reserve a request's decode KV cache with its prefill or shipment (default) instead of at decode start (upstream). */
  reserveDecodeUpFront = false;
  /** Scheduler-side estimates (upstream sched_memory / sched_pending_tokens / sched_tag). */
  schedPendingTokens = 0;
  schedTag: "mixed" | null = null;
  /** Set by a scheduler that indexes instances by schedPendingTokens: told when a completion lowers it. */
  schedLoadChanged: ((instance: Instance) => void) | null = null;
  /** This instance's slot in that scheduler's index. */
  schedSlot = -1;

  /**
   * The running batch in order. Tasks that left it stay in their slot (with `inBatch` false) until
   * the next compaction, so a finishing task costs nothing here; `batchCount` is the live size.
   */
  private readonly slots: Task[] = [];
  /** The batchSeq each slot was filled with: a slot is live while its task is in the batch under that seq. */
  private readonly slotSeqs: number[] = [];
  batchCount = 0;
  promptTasksInBatch = 0;
  tokenTasksInBatch = 0;
  /** Decode steps this instance has run (every task in a run generates that many tokens). */
  decodeSteps = 0;
  /**
   * The running tasks by the step they finish at: decodes at their last token, prefills at the end of
   * the iteration they run in (a batch with a prefill runs one iteration), so one heap yields every
   * task an iteration finishes.
   */
  private readonly finishing = new FinishHeap();
  /** Running sums over the batch, so an iteration is costed without walking it. */
  /** Prompt tokens of the prefills in the running batch. */
  batchPromptTokens = 0;
  private decodePromptTokens = 0;
  private decodeGeneratedOffset = 0;
  readonly pendingQueue: Task[] = [];
  /**
   * Tasks in `pendingQueue` that head their request's pool, kept so the per-iteration walks over the
   * queue that only look for such tasks can be skipped when there are none left to find.
   */
  pendingHeadCount = 0;
  readonly pendingPromptQueue: Task[] = [];
  readonly blockedQueue: Task[] = [];
  private readonly requestsByArrival = new RequestsByArrival();
  /** Requests with a task on this instance, ordered by arrival time. */
  readonly pendingRequests: SimRequest[] = this.requestsByArrival.list;
  pendingTokens = 0;
  batchTokens = 0;

  numContiguousIterations = 0;
  private pauseNextIteration = false;
  private iterationEvent: EventHandle = NO_EVENT;
  private iterationHasPrompt = false;

  readonly createdAt: number;
  removedAt = -1;
  memoryStalls = 0;
  preemptions = 0;
  iterations = 0;

  constructor(
    readonly id: number,
    /** Processor name, e.g. "h100-80gb" (upstream's instance name). */
    readonly name: string,
    readonly tag: InstanceRole,
    readonly sku: string,
    readonly serverId: number,
    readonly numGpus: number,
    maxMemory: number,
    weightsBytes: number,
    readonly kvBytesPerToken: number,
    readonly batching: BatchingConfig,
    readonly perf: IterationTimeModel,
    readonly tensorParallelism: number,
    private readonly host: InstanceHost,
  ) {
    const reals = this.reals;
    reals.fill(0);
    reals[Real.MaxMemory] = maxMemory;
    reals[Real.WeightsBytes] = weightsBytes;
    reals[Real.Memory] = weightsBytes;
    reals[Real.PeakMemory] = weightsBytes;
    reals[Real.SchedMemory] = weightsBytes;
    this.createdAt = host.clock.now;
    this.statusSince = this.createdAt;
    reals[Real.LastServedAt] = this.createdAt;
  }

  /**
   * The instance's fractional fields (times, byte counts), kept in one array of unboxed doubles
   * (`Real` names the slots). As object fields each was a separate heap box (Node 20's V8 does not
   * unbox double fields), several cache lines an iteration event loaded after hundreds of other
   * instances had run; here they are two lines next to the array. The literal holds doubles (not
   * zeros) so V8 allocates it as a double array in place, not as integers converted elsewhere later.
   */
  private readonly reals: number[] = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];

  /** Bytes of GPU memory (weights plus KV cache). */
  get maxMemory(): number {
    return this.reals[Real.MaxMemory]!;
  }
  get weightsBytes(): number {
    return this.reals[Real.WeightsBytes]!;
  }
  /** Bytes of weights plus KV cache currently allocated. */
  get memory(): number {
    return this.reals[Real.Memory]!;
  }
  set memory(bytes: number) {
    this.reals[Real.Memory] = bytes;
  }
  get peakMemory(): number {
    return this.reals[Real.PeakMemory]!;
  }
  set peakMemory(bytes: number) {
    this.reals[Real.PeakMemory] = bytes;
  }
  /** Scheduler-side estimate of `memory` (upstream sched_memory). */
  get schedMemory(): number {
    return this.reals[Real.SchedMemory]!;
  }
  set schedMemory(bytes: number) {
    this.reals[Real.SchedMemory] = bytes;
  }
  /** Last time a task completed here (or the creation time). */
  get lastServedAt(): number {
    return this.reals[Real.LastServedAt]!;
  }
  set lastServedAt(time: number) {
    this.reals[Real.LastServedAt] = time;
  }
  /** Seconds of the current run of identical iterations, per iteration. */
  get iterationDuration(): number {
    return this.reals[Real.IterationDuration]!;
  }
  private set iterationDuration(seconds: number) {
    this.reals[Real.IterationDuration] = seconds;
  }
  private get iterationEventTime(): number {
    return this.reals[Real.IterationEventTime]!;
  }
  private set iterationEventTime(time: number) {
    this.reals[Real.IterationEventTime] = time;
  }
  private get iterationStartedAt(): number {
    return this.reals[Real.IterationStartedAt]!;
  }
  private set iterationStartedAt(time: number) {
    this.reals[Real.IterationStartedAt] = time;
  }
  /** Seconds with a non-empty batch, up to the last time the batch emptied (see busyTimeAt). */
  get busyTime(): number {
    return this.reals[Real.BusyTime]!;
  }
  private set busyTime(seconds: number) {
    this.reals[Real.BusyTime] = seconds;
  }
  private get runTimestamp(): number {
    return this.reals[Real.RunTimestamp]!;
  }
  private set runTimestamp(time: number) {
    this.reals[Real.RunTimestamp] = time;
  }
  /** Seconds spent on iterations with a prefill (see phaseBusyAt). */
  get prefillBusyTime(): number {
    return this.reals[Real.PrefillBusyTime]!;
  }
  private set prefillBusyTime(seconds: number) {
    this.reals[Real.PrefillBusyTime] = seconds;
  }
  /** Seconds spent on decode-only iterations (see phaseBusyAt). */
  get decodeBusyTime(): number {
    return this.reals[Real.DecodeBusyTime]!;
  }
  private set decodeBusyTime(seconds: number) {
    this.reals[Real.DecodeBusyTime] = seconds;
  }

  /** The running batch in order (compacted on read; for observers and tests). */
  get batch(): readonly Task[] {
    this.compactBatch();
    return this.slots;
  }

  private compactBatch(): void {
    const slots = this.slots;
    if (slots.length === this.batchCount) return;
    const seqs = this.slotSeqs;
    let kept = 0;
    for (let i = 0; i < slots.length; i++) {
      const task = slots[i]!;
      const seq = seqs[i]!;
      if (task.inBatch && task.batchSeq === seq) {
        slots[kept] = task;
        seqs[kept++] = seq;
      }
    }
    slots.length = kept;
    seqs.length = kept;
  }

  /** Busy seconds up to `now`, counting the batch that is running at `now`. */
  busyTimeAt(now: number): number {
    return this.batchCount > 0 ? this.busyTime + (now - this.runTimestamp) : this.busyTime;
  }

  /** Seconds spent on batches with a prefill and on decode-only batches, up to `now` (the running one included). */
  phaseBusyAt(now: number): { prefill_s: number; decode_s: number } {
    const running = this.iterationEvent === NO_EVENT ? 0 : Math.max(0, now - this.iterationStartedAt);
    return {
      prefill_s: this.prefillBusyTime + (this.iterationHasPrompt ? running : 0),
      decode_s: this.decodeBusyTime + (this.iterationHasPrompt ? 0 : running),
    };
  }

  /** KV-cache bytes in use as a fraction of what is left after the weights. */
  get kvCacheUsage(): number {
    const capacity = this.maxMemory - this.weightsBytes;
    return capacity > 0 ? (this.memory - this.weightsBytes) / capacity : 1;
  }

  get label(): string {
    return `${this.name}_${this.id}`;
  }

  get isIdle(): boolean {
    return this.batchCount === 0 && this.pendingQueue.length === 0 && this.blockedQueue.length === 0;
  }

  allocMemory(bytes: number): void {
    this.memory += bytes;
    if (this.memory > this.peakMemory) this.peakMemory = this.memory;
  }

  freeMemory(bytes: number): void {
    this.memory -= bytes;
    this.schedMemory -= bytes;
  }

  // ---- arrivals ---------------------------------------------------------------------------------

  taskArrival(task: Task): void {
    const now = this.host.clock.now;
    task.instance = this;
    task.state = TaskState.Queued;
    if (task.isPrompt) this.outstandingPrefillTokens += task.size;
    task.arrivalTime = now;
    this.addToPool(task);
    this.addPendingTask(task, false);

    if (this.batchCount === 0) {
      if (this.memory + task.memoryOn(this) > this.maxMemory) {
        this.memoryStalls++;
        return;
      }
      this.startIteration();
      return;
    }
    const { maxBatchSize, maxBatchTokens, kind } = this.batching;
    if (kind === "orca") {
      if (this.batchCount < maxBatchSize && this.batchTokens <= maxBatchTokens) this.pauseIteration();
      return;
    }
    if (this.batchCount < maxBatchSize && this.batchTokens + task.tokensPerIteration <= maxBatchTokens) {
      this.pauseIteration();
      return;
    }
    if (task.isPrompt) {
      const batchPromptTokens = this.batchTokens - this.tokenTasksInBatch;
      if (this.promptTasksInBatch < this.batchCount && batchPromptTokens + task.size <= maxBatchTokens) {
        this.pauseIteration();
      }
    }
  }

  /** Called on the source instance when its KV-cache shipment finished and freed memory. */
  notifyFlowCompletion(): void {
    const head = this.pendingQueue[0];
    if (head === undefined) return;
    if (this.batchCount === 0) {
      if (this.memory + head.memoryOn(this) > this.maxMemory) {
        this.memoryStalls++;
        return;
      }
      this.startIteration();
      return;
    }
    if (this.batchCount < this.batching.maxBatchSize && this.batchTokens < this.batching.maxBatchTokens) {
      this.pauseIteration();
    }
  }

  // ---- queues -----------------------------------------------------------------------------------

  private addPendingTask(task: Task, preempted: boolean): void {
    if (this.batching.kind === "splitwise") {
      // Binary insertion on (num_preemptions, arrival) evaluated on the current keys, exactly as
      // upstream's bisect.insort does: the queue is not re-sorted when keys change while queued.
      const queue = this.pendingQueue;
      const preemptions = task.numPreemptions;
      const arrival = task.arrivalRank;
      let lo = 0;
      let hi = queue.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const other = queue[mid]!;
        const otherPreemptions = other.numPreemptions;
        const before =
          preemptions < otherPreemptions || (preemptions === otherPreemptions && arrival < other.arrivalRank);
        if (before) hi = mid;
        else lo = mid + 1;
      }
      if (lo === queue.length) queue.push(task);
      else insertAtIndex(queue, lo, task);
    } else {
      this.pendingQueue.push(task);
    }
    if (preempted) this.blockedQueue.push(task);
    if (task.headsPool) this.pendingHeadCount++;
    if (task.isPrompt) {
      this.pendingPromptQueue.push(task);
      this.pendingTokens += task.size;
    } else {
      this.pendingTokens += 1;
    }
  }

  private removePendingTask(task: Task): void {
    removeItem(this.pendingQueue, task);
    if (task.state === TaskState.Blocked) removeItem(this.blockedQueue, task);
    if (task.headsPool) this.pendingHeadCount--;
    if (task.isPrompt) {
      removeItem(this.pendingPromptQueue, task);
      this.pendingTokens -= task.size;
    } else {
      this.pendingTokens -= 1;
    }
  }

  /**
   * Takes tasks that join the batch out of the queues. After a mass preemption tens of decodes rejoin
   * at once; removing them one by one cost O(n) each (search and shift), so several are marked and
   * each queue is compacted in one pass, keeping its order.
   */
  private removePendingTasks(tasks: ScratchList<Task>): void {
    const items = tasks.items;
    if (tasks.length < 4) {
      for (let i = 0; i < tasks.length; i++) this.removePendingTask(items[i]!);
      return;
    }
    const mark = ++queueRemovalMark;
    let anyBlocked = false;
    let anyPrompt = false;
    for (let i = 0; i < tasks.length; i++) {
      const task = items[i]!;
      task.queueMark = mark;
      if (task.state === TaskState.Blocked) anyBlocked = true;
      if (task.headsPool) this.pendingHeadCount--;
      if (task.isPrompt) {
        anyPrompt = true;
        this.pendingTokens -= task.size;
      } else {
        this.pendingTokens -= 1;
      }
    }
    removeMarked(this.pendingQueue, mark);
    if (anyBlocked) removeMarked(this.blockedQueue, mark);
    if (anyPrompt) removeMarked(this.pendingPromptQueue, mark);
  }

  private addToPool(task: Task): void {
    const request = task.request;
    if (request.poolHead !== null) {
      if (request.poolNext !== null)
        throw new Error(`internal: request ${request.id} has a third task on instance ${this.label}`);
      request.poolNext = task;
      task.headsPool = false;
      task.poolSibling = request.poolHead;
      request.poolHead.poolSibling = task;
      return;
    }
    request.poolHead = task;
    request.poolNext = null;
    task.headsPool = true;
    task.poolSibling = null;
    this.requestsByArrival.add(request);
  }

  private removeFromPool(task: Task): void {
    const request = task.request;
    if (request.poolHead === task) {
      request.poolHead = request.poolNext;
      request.poolNext = null;
    } else if (request.poolNext === task) {
      request.poolNext = null;
    }
    task.headsPool = false;
    const sibling = task.poolSibling;
    if (sibling !== null) {
      sibling.poolSibling = null;
      task.poolSibling = null;
    }
    const head = request.poolHead;
    if (head !== null) {
      if (!head.headsPool) {
        head.headsPool = true;
        if (isPending(head)) this.pendingHeadCount++;
      }
    } else if (!this.requestsByArrival.remove(request)) {
      throw new Error(`internal: request ${request.id} is not pending on instance ${this.label}`);
    }
  }

  private addToBatch(task: Task): void {
    if (this.slots.length > 2 * this.batchCount + 16) this.compactBatch();
    task.inBatch = true;
    task.batchSeq = nextBatchSeq++;
    this.slots.push(task);
    this.slotSeqs.push(task.batchSeq);
    task.stepsAtJoin = this.decodeSteps;
    if (task.isPrompt) {
      this.promptTasksInBatch++;
      task.doneAt = this.decodeSteps + 1;
      this.batchPromptTokens += task.size;
    } else {
      this.tokenTasksInBatch++;
      task.doneAt = this.decodeSteps + (task.size - task.genBase);
      this.decodePromptTokens += task.promptTokens;
      this.decodeGeneratedOffset += task.genBase - task.stepsAtJoin;
    }
    this.finishing.push(task);
    if (++this.batchCount === 1) this.runTimestamp = this.host.clock.now;
  }

  /**
   * Takes a task out of the batch, freezing its generated tokens (its slot is cleared lazily). The
   * caller has taken it out of the finish heap.
   */
  private leaveBatch(task: Task): void {
    const generated = task.genBase + this.decodeSteps - task.stepsAtJoin;
    if (task.isPrompt) {
      this.promptTasksInBatch--;
      this.batchPromptTokens -= task.size;
    } else {
      this.tokenTasksInBatch--;
      this.decodePromptTokens -= task.promptTokens;
      this.decodeGeneratedOffset -= task.genBase - task.stepsAtJoin;
    }
    task.genBase = generated;
    task.inBatch = false;
    if (--this.batchCount === 0) {
      this.busyTime += this.host.clock.now - this.runTimestamp;
      this.runTimestamp = 0;
    }
  }

  /** A preempted task leaves the batch; its slot dies with its batchSeq, so it may rejoin at once. */
  private removeFromBatch(task: Task): void {
    this.finishing.remove(task);
    this.leaveBatch(task);
  }

  // ---- batch selection --------------------------------------------------------------------------

  /** Fills `newTasks`/`preempted` (see batch-selection.ts); returns nothing to avoid allocating per iteration. */
  private selectBatch(newTasks: ScratchList<Task>, preempted: ScratchList<Task>): void {
    if (this.batching.kind === "orca") selectOrcaBatch(this, newTasks);
    else this.batchTokens = selectSplitwiseBatch(this, newTasks, preempted);
  }

  // ---- iterations -------------------------------------------------------------------------------

  startIteration(): void {
    const clock = this.host.clock;
    const { maxBatchSize, maxBatchTokens } = this.batching;
    // Fast path (hot): nothing waits on this instance, so the next batch is the running decodes
    // (they fitted before and only shrank), nobody is skipped, and batch selection has nothing to do.
    const unchanged =
      this.pendingQueue.length === 0 &&
      this.promptTasksInBatch === 0 &&
      this.batchCount <= maxBatchSize &&
      this.batchCount <= maxBatchTokens;
    const newTasks = newTasksScratch;
    newTasks.clear();
    if (unchanged) {
      this.batchTokens = this.batchCount;
    } else {
      const preempted = preemptedScratch;
      preempted.clear();
      this.selectBatch(newTasks, preempted);

      // The preempted decodes have sat untouched in the batch, so their first loads miss the cache
      // (two lines each). A first pass that only bumps their counters has independent iterations, so
      // the CPU overlaps those misses across tasks; preemptTask then finds them warm.
      const leaving = preempted.items;
      for (let i = 0; i < preempted.length; i++) {
        const task = leaving[i]!;
        task.state = TaskState.Blocked;
        task.preemptions++;
      }
      for (let i = 0; i < preempted.length; i++) this.preemptTask(leaving[i]!);
      this.removePendingTasks(newTasks);
      for (let i = 0; i < newTasks.length; i++) this.addToBatch(newTasks.items[i]!);
      // Every request whose first task is not running was skipped this iteration (upstream's
      // "num_preemptions"); those first tasks are exactly the waiting ones that head their request.
      if (this.pendingHeadCount > 0) {
        const pending = this.pendingQueue;
        for (let i = 0; i < pending.length; i++) {
          const task = pending[i]!;
          if (task.headsPool) task.numPreemptions++;
        }
      }
    }

    if (this.batchCount === 0) {
      this.host.instanceIdle(this, this.pendingRequests.length > 0);
      return;
    }

    // From the running sums and the finish heap: no walk over the batch.
    const prefillTokens = this.batchPromptTokens;
    const decodeContext =
      this.decodePromptTokens + this.decodeGeneratedOffset + this.tokenTasksInBatch * this.decodeSteps;
    // Infinity when no decode is running.
    let contiguous = Math.max(0, this.finishing.firstDoneAt() - this.decodeSteps);
    const shape = iterationShape;
    shape.prefillTokens = prefillTokens;
    shape.numPrefill = this.promptTasksInBatch;
    shape.numDecode = this.tokenTasksInBatch;
    // A run of identical decode iterations is costed at its middle iteration's context, so models
    // where decode time grows with context (roofline, profile) are right on average.
    shape.decodeContextTokens =
      this.promptTasksInBatch > 0
        ? decodeContext
        : decodeContext + (this.tokenTasksInBatch * (contiguous - 1)) / 2;
    this.iterationDuration = this.perf.iterationTime(shape);
    if (this.promptTasksInBatch > 0) contiguous = 1;
    this.numContiguousIterations = contiguous;
    this.iterationHasPrompt = this.promptTasksInBatch > 0;

    const now = clock.now;
    // Only the tasks that just joined can be queued or preempted; the others are running.
    for (let i = 0; i < newTasks.length; i++) {
      const task = newTasks.items[i]!;
      if (task.state === TaskState.Queued) this.runTask(task, now);
      else if (task.state === TaskState.Blocked) task.state = TaskState.Running;
    }
    const duration = this.iterationDuration * contiguous;
    this.iterationEventTime = now + duration;
    this.iterationStartedAt = now;
    if (duration === 0) {
      // A zero-length iteration (a 1-token output has no decode steps) completes inline, as upstream.
      this.iterationEvent = NO_EVENT;
      this.completeIteration();
      return;
    }
    this.iterationEvent = clock.scheduleAt(this.iterationEventTime, this);
  }

  private runTask(task: Task, now: number): void {
    task.state = TaskState.Running;
    task.startTime = now;
    task.runTime = now;
    if (task.isPrompt) task.request.promptStartTime = now;
    const bytes = task.memoryOn(this);
    this.allocMemory(bytes);
    task.request.memory += bytes;
    if (task.isPrompt && task.chained !== null && this.reserveDecodeUpFront) task.chained.reserved = true;
  }

  private preemptTask(task: Task): void {
    if (task.isPrompt)
      throw new Error(`internal: prompt task of request ${task.request.id} cannot be preempted`);
    // state and the task's preemption count were set by the caller's first pass.
    this.preemptions++;
    this.removeFromBatch(task);
    this.addPendingTask(task, true);
  }

  /** Cut the current run of decode iterations at the next iteration boundary so new work can join. */
  private pauseIteration(): void {
    if (this.pauseNextIteration || this.promptTasksInBatch > 0) return;
    if (this.iterationEvent === NO_EVENT) return;
    this.pauseNextIteration = true;
    const clock = this.host.clock;
    const now = clock.now;
    const duration = this.iterationDuration;
    const iterationStart = this.iterationEventTime - duration * this.numContiguousIterations;
    const elapsed = now - iterationStart;
    let contiguous = pythonFloorDiv(now - iterationStart, duration) + 1;
    if (contiguous > this.numContiguousIterations) contiguous = this.numContiguousIterations;
    // Tasks read their tokens for this run from numContiguousIterations.
    this.numContiguousIterations = contiguous;
    const remaining = duration * contiguous - elapsed;
    clock.cancel(this.iterationEvent);
    this.iterationEventTime = now + (remaining > 0 ? remaining : 0);
    this.iterationEvent = clock.scheduleAt(this.iterationEventTime, this);
  }

  onEvent(): void {
    this.iterationEvent = NO_EVENT;
    this.completeIteration();
  }

  private completeIteration(): void {
    const now = this.host.clock.now;
    this.iterations += this.numContiguousIterations;
    const elapsed = now - this.iterationStartedAt;
    if (this.iterationHasPrompt) this.prefillBusyTime += elapsed;
    else this.decodeBusyTime += elapsed;
    if (this.host.logIteration !== undefined) {
      const start = this.iterationEventTime - this.iterationDuration * this.numContiguousIterations;
      this.host.logIteration(this, start, now);
    }

    // Every task of the run generated `steps` tokens: one counter, not a walk over the batch. The
    // finished ones are the prefills and the decodes whose finish step has come, in batch order.
    this.decodeSteps += this.numContiguousIterations;
    // The shared list unless this completion runs inside another one's callbacks (see below).
    const completed = completionDepth === 0 ? completedScratch : new ScratchList<Task>();
    completed.clear();
    const decodeSteps = this.decodeSteps;
    while (this.finishing.firstDoneAt() <= decodeSteps) completed.push(this.finishing.pop()!);
    if (completed.length > 1) completed.sortBy(joinedBatchEarlier);
    const finished = completed.items;
    for (let i = 0; i < completed.length; i++) this.leaveBatch(finished[i]!);
    // Completion callbacks never re-enter this instance's iteration loop (they only queue work), and
    // one that completes another instance's iteration inline gets a list of its own (the depth).
    completionDepth++;
    try {
      for (let i = 0; i < completed.length; i++) this.taskCompletion(finished[i]!, now);
    } finally {
      completionDepth--;
    }
    this.pauseNextIteration = false;
    this.startIteration();
  }

  private taskCompletion(task: Task, now: number): void {
    task.state = TaskState.Completed;
    task.completionTime = now;
    const request = task.request;
    this.lastServedAt = now;
    if (task.isPrompt) {
      this.schedPendingTokens -= task.size;
      this.outstandingPrefillTokens -= task.size;
      request.firstTokenTime = now;
    } else {
      this.schedPendingTokens -= 1;
      this.freeMemory(request.memory);
      request.memory = 0;
    }
    if (this.schedLoadChanged !== null) this.schedLoadChanged(this);
    this.removeFromPool(task);
    this.host.taskCompleted(task, this);
  }
}

/**
 * Scratch lists of `startIteration`, shared by all instances rather than kept per instance: an
 * iteration event touches its instance's state cold (hundreds of instances take turns), and two lists
 * fewer per instance is two objects and their storage fewer to load. Sharing is safe because nothing
 * between filling them and the last read calls out of the instance (selection, queue and batch moves
 * and `runTask` are internal; `instanceIdle` and the inline `completeIteration` come after).
 */
const newTasksScratch = new ScratchList<Task>();
const preemptedScratch = new ScratchList<Task>();
/**
 * Reused for every iteration of every instance (performance models only read it during the call),
 * so costing one allocates nothing and loads no per-instance object.
 */
const iterationShape: { -readonly [K in keyof IterationShape]: IterationShape[K] } = {
  prefillTokens: 0,
  numPrefill: 0,
  numDecode: 0,
  decodeContextTokens: 0,
};
/** The tasks an iteration finished, shared for the same reason; `completionDepth` guards its reuse. */
const completedScratch = new ScratchList<Task>();
/** Completion callbacks running (see completeIteration). */
let completionDepth = 0;

/** Marks tasks leaving the queues together (see removePendingTasks). */
let queueRemovalMark = 0;

/** Drops the tasks carrying `mark` from a queue in one pass, keeping the others' order. */
function removeMarked(queue: Task[], mark: number): void {
  let kept = 0;
  for (let i = 0; i < queue.length; i++) {
    const task = queue[i]!;
    if (task.queueMark !== mark) queue[kept++] = task;
  }
  while (queue.length > kept) queue.pop();
}
/**
 * Batch order stamps, shared by all instances so a stale slot (a task that left this batch, finished,
 * and was reused for a request now running elsewhere) can never carry the stamp of a live one.
 */
let nextBatchSeq = 0;

function joinedBatchEarlier(a: Task, b: Task): boolean {
  return a.batchSeq < b.batchSeq;
}
