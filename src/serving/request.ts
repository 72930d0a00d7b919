import type { Instance } from "./instance.ts";

export const enum TaskState {
  None = 0,
  Queued = 1,
  Running = 2,
  Blocked = 3,
  Completed = 4,
}

/**
 * A prefill (prompt) or decode (token) task of a request. Per-task counters mirror upstream's
 * PromptTask/TokenTask so batching decisions match it exactly.
 */
export class Task {
  // Every numeric field has a number initializer, also those the constructor sets. A field declared
  // without one starts as `undefined` (ES class fields), and V8 then keeps it in a "tagged" slot: each
  // store of a non-integer number allocates a new heap box (and, the task being long-lived, goes
  // through the write barrier), where a field that started as a number is overwritten in place.
  // On the 10M-request config such fields (here, on the request and on the instance) were 15 % of
  // what the simulation allocated, and each of those boxes outlived a young-generation collection.
  state = TaskState.None;
  instance: Instance | null = null;
  /** Tokens this task adds to an iteration's batch: the prompt size for prefill, 1 for decode. */
  tokensPerIteration = 0;
  /**
   * Generated tokens are derived, not counted per iteration: while the task is in a batch they are
   * `genBase` plus the decode steps its instance has run since the task joined (`stepsAtJoin`); when
   * it leaves, they are frozen into `genBase`. This keeps an iteration O(tasks that finish).
   */
  genBase = 0;
  stepsAtJoin = 0;
  /** The instance step count at which this decode task has generated all its tokens. */
  doneAt = 0;
  /** Order in which the task joined its batch (batch order), for ties. */
  batchSeq = 0;
  /** Iterations this task sat pending while others ran (upstream's "num_preemptions"). */
  numPreemptions = 0;
  inBatch = false;
  /** Selection epoch in which this task was last picked (scratch for batch selection). */
  selected = 0;
  /** Selection epoch in which this task's request was picked (scratch for batch selection). */
  requestEpoch = 0;
  /** Scratch mark of a batch of tasks leaving their instance's queues together. */
  queueMark = 0;
  /**
   * This task is its request's `poolHead` (kept by the instance's pool bookkeeping), so the
   * per-iteration walks over waiting tasks need not load the request and its pool to ask.
   */
  headsPool = false;
  /**
   * The other task of this request's pool on its instance (prefill and decode wait there together
   * at most), kept by the instance's pool bookkeeping so batch selection can mark a picked request
   * on its tasks without loading the request.
   */
  poolSibling: Task | null = null;
  /** The request's prompt length, copied here so decode costing does not chase the request. */
  promptTokens = 0;
  /**
   * The request's arrival rank (see `ArrivalRanker`), copied here so ordering a queue of tasks by
   * arrival neither chases the request nor loads the heap box V8 keeps a fractional field in.
   */
  arrivalRank = 0;
  /** Times this task was preempted (counted here, where the preemption already is, not on the request). */
  preemptions = 0;
  arrivalTime = 0;
  startTime = -1;
  completionTime = -1;
  runTime = 0;
  /** The co-located decode task submitted together with this prefill (run-to-completion chaining). */
  chained: Task | null = null;

  /** True when this decode task's KV cache was reserved before it started (with its prefill or its shipment). */
  reserved = false;

  constructor(
    readonly request: SimRequest,
    readonly isPrompt: boolean,
    /** Prompt tokens for prefill; output tokens after the first for decode. */
    public size: number,
  ) {
    this.tokensPerIteration = isPrompt ? size : 1;
    this.promptTokens = request.promptTokens;
    this.arrivalRank = request.arrivalRank;
  }

  /** Back to the state of a new task of `size` tokens (see `SimRequest.reuse`). */
  reset(size: number): void {
    this.state = TaskState.None;
    this.instance = null;
    this.size = size;
    this.tokensPerIteration = this.isPrompt ? size : 1;
    this.promptTokens = this.request.promptTokens;
    this.arrivalRank = this.request.arrivalRank;
    this.preemptions = 0;
    this.genBase = 0;
    this.stepsAtJoin = 0;
    this.doneAt = 0;
    this.batchSeq = 0;
    this.numPreemptions = 0;
    this.inBatch = false;
    this.selected = 0;
    this.requestEpoch = 0;
    this.queueMark = 0;
    this.headsPool = false;
    this.poolSibling = null;
    this.arrivalTime = 0;
    this.startTime = -1;
    this.completionTime = -1;
    this.runTime = 0;
    this.chained = null;
    this.reserved = false;
  }

  /**
   * KV-cache bytes this task allocates when it first runs on `instance`. With
   * `instance.reserveDecodeUpFront`, a prefill whose decode runs on the same instance also reserves
   * the decode's cache, so an instance can never fill up with prefilled requests none of whose
   * decodes fit (a deadlock upstream allows).
   */
  memoryOn(instance: Instance): number {
    const kv = instance.kvBytesPerToken;
    if (this.isPrompt) {
      const own = (this.size + 1) * kv;
      return this.chained !== null && instance.reserveDecodeUpFront ? own + this.chained.size * kv : own;
    }
    return this.reserved ? 0 : this.size * kv;
  }

  /** Tokens generated so far (for prefill: 1 once its iteration is done). */
  get generatedTokens(): number {
    return this.inBatch && this.instance !== null
      ? this.genBase + this.instance.decodeSteps - this.stepsAtJoin
      : this.genBase;
  }

  /** Tokens this task generates in the current run of iterations (0 when it is not running). */
  get generatingTokens(): number {
    return this.inBatch && this.instance !== null ? this.instance.numContiguousIterations : 0;
  }

  /** Tokens this task processes in the current run: the whole prompt for prefill, one per step for decode. */
  get processingTokens(): number {
    return this.isPrompt && this.inBatch ? this.size : this.generatingTokens;
  }

  /**
   * Prefill is done after its one iteration; decode after `size` steps. A decode task of size 0 (a
   * 1-token output) that ran in a mixed batch is done too (upstream would run it "-1" more steps).
   */
  isComplete(): boolean {
    return this.isPrompt ? this.generatedTokens >= 1 : this.generatedTokens >= this.size;
  }
}

/** Waiting in its instance's pending queue (never run, or preempted), not running or finished. */
export function isPending(task: Task): boolean {
  return task.state === TaskState.Queued || task.state === TaskState.Blocked;
}

/** KV-cache shipment from the prefill instance to the decode instance. */
export interface KvTransfer {
  readonly source: Instance;
  readonly destination: Instance;
  readonly bytes: number;
  startTime: number;
  completionTime: number;
}

/**
 * A request inside the simulator. Memory stays flat however long the workload: a finished request
 * is dropped or, in a Simulation, reused for a later arrival (`reuse`), because requests live for
 * seconds of simulated time, long enough to be promoted out of V8's young generation, so allocating
 * them fresh made old-generation collections a tenth of a large run.
 */
export class SimRequest {
  readonly prompt: Task;
  readonly token: Task;
  /** KV-cache bytes currently held for this request on the instance that owns it. */
  memory = 0;
  promptStartTime = -1;
  firstTokenTime = -1;
  kvTransfer: KvTransfer | null = null;
  /**
   * Tasks of this request waiting or running on its current instance, in the order they arrived
   * there (upstream request_tasks): at most the prefill and the decode, so two fields rather than an
   * array, which spares batch selection a load per request.
   */
  poolHead: Task | null = null;
  poolNext: Task | null = null;
  /** Scratch for batch selection when it walks requests: epoch in which one of its tasks was picked. */
  selectionEpoch = 0;

  // Plain fields with number initializers rather than constructor parameter properties, which are
  // declared bare (see the note on Task).
  id = 0;
  arrivalTime = 0;
  /** Orders requests as their arrival times do, equal times equal ranks (see `ArrivalRanker`). */
  arrivalRank = 0;
  promptTokens = 0;
  outputTokens = 0;

  constructor(
    id: number,
    arrivalTime: number,
    arrivalRank: number,
    promptTokens: number,
    outputTokens: number,
  ) {
    this.id = id;
    this.arrivalTime = arrivalTime;
    this.arrivalRank = arrivalRank;
    this.promptTokens = promptTokens;
    this.outputTokens = outputTokens;
    this.prompt = new Task(this, true, promptTokens);
    this.token = new Task(this, false, outputTokens - 1);
  }

  /** Times the request's tasks were preempted. */
  get preemptions(): number {
    return this.prompt.preemptions + this.token.preemptions;
  }

  /** This finished request, reset to a new one (its tasks too); returns itself. */
  reuse(
    id: number,
    arrivalTime: number,
    arrivalRank: number,
    promptTokens: number,
    outputTokens: number,
  ): SimRequest {
    this.id = id;
    this.arrivalTime = arrivalTime;
    this.arrivalRank = arrivalRank;
    this.promptTokens = promptTokens;
    this.outputTokens = outputTokens;
    this.memory = 0;
    this.promptStartTime = -1;
    this.firstTokenTime = -1;
    this.kvTransfer = null;
    this.poolHead = null;
    this.poolNext = null;
    this.selectionEpoch = 0;
    this.prompt.reset(promptTokens);
    this.token.reset(outputTokens - 1);
    return this;
  }
}

/**
 * Gives requests, created in non-decreasing order of arrival time, an integer rank that orders them
 * exactly as their times do (equal times, equal ranks). Queues ordered by arrival compare ranks: an
 * integer sits in the object itself, where V8 keeps a fractional field in a separate heap box.
 */
export class ArrivalRanker {
  private lastArrival = Number.NaN;
  private rank = 0;

  rankOf(arrival: number): number {
    if (arrival !== this.lastArrival) {
      if (arrival < this.lastArrival) {
        throw new Error(`internal: arrival ${arrival} s comes after ${this.lastArrival} s`);
      }
      this.lastArrival = arrival;
      this.rank++;
    }
    return this.rank;
  }
}
