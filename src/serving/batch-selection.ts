import { ScratchList } from "../core/arrays.ts";
import type { Instance } from "./instance.ts";
import { TaskState, isPending, type Task } from "./request.ts";

/**
 * Which waiting and running tasks make an instance's next batch: ORCA's first-come-first-served
 * admission, and Splitwise's five passes with a token budget, starvation priority and preemption,
 * exactly as upstream (splitwise-sim's `select_batch`). Functions of the instance's queues and running
 * batch that only fill the given lists; the instance applies the result. Batch selection never
 * re-enters itself, so the scratch lists below are shared by all instances.
 */

const selectedScratch = new ScratchList<Task>();
const candidatesScratch = new ScratchList<Task>();
/** Shared by all instances so a request's epoch mark can never collide across instances. */
let selectionEpoch = 0;
/** Pending tasks heading their pool that passes 1-3 of the current selection marked (see pass 5). */
let pendingHeadsMarked = 0;

/** ORCA: waiting requests join in arrival order, up to the batch size, until one's KV cache does not fit. */
export function selectOrcaBatch(instance: Instance, newTasks: ScratchList<Task>): void {
  let batchSize = instance.batchCount;
  let memory = instance.memory;
  const requests = instance.pendingRequests;
  for (let i = 0; i < requests.length; i++) {
    const request = requests[i]!;
    if (batchSize === instance.batching.maxBatchSize) break;
    const task = request.poolHead!;
    if (task.inBatch) continue;
    if (task.state === TaskState.Blocked) {
      newTasks.push(task);
      batchSize++;
      continue;
    }
    const needed = task.memoryOn(instance);
    if (needed + memory <= instance.maxMemory) {
      newTasks.push(task);
      batchSize++;
      memory += needed;
    } else {
      break;
    }
  }
}

/**
 * Splitwise: fills `newTasks` (joining) and `preempted` (leaving the running batch) and returns the
 * batch's tokens per iteration.
 */
export function selectSplitwiseBatch(
  instance: Instance,
  newTasks: ScratchList<Task>,
  preempted: ScratchList<Task>,
): number {
  const { maxBatchSize, maxBatchTokens, maxPreemptions } = instance.batching;
  const epoch = ++selectionEpoch;
  pendingHeadsMarked = 0;
  const selected = selectedScratch;
  selected.clear();
  let batchTokens = 0;
  let memory = instance.memory;
  const maxMemory = instance.maxMemory;
  // Hot path: the five passes are written out (no closures) because this runs every iteration.
  let batchTaskMarked = false;

  // Indexed loops throughout: for-of allocated an iterator per loop on this path.
  const pendingQueue = instance.pendingQueue;
  // 1. tasks that waited too long go first
  for (let i = 0; i < pendingQueue.length; i++) {
    const task = pendingQueue[i]!;
    if (task.numPreemptions < maxPreemptions) break;
    // A task that does not head its request's pool waits for the one before it: a decode must not
    // run before its own prefill. Only max_preemptions 0 gets here with one (a task's count grows
    // only while it heads its pool).
    if (!task.headsPool) continue;
    if (selected.length === maxBatchSize) break;
    if (selected.length > 0 && batchTokens + task.tokensPerIteration > maxBatchTokens) break;
    if (task.requestEpoch === epoch) continue;
    if (task.state === TaskState.Blocked) {
      selected.push(task);
      if (markPicked(task, epoch)) batchTaskMarked = true;
      batchTokens += task.tokensPerIteration;
      continue;
    }
    const needed = task.memoryOn(instance);
    if (needed + memory <= maxMemory) {
      selected.push(task);
      if (markPicked(task, epoch)) batchTaskMarked = true;
      batchTokens += task.tokensPerIteration;
      memory += needed;
    }
  }
  // 2. prompts, in arrival order at this instance
  const promptQueue = instance.pendingPromptQueue;
  for (let i = 0; i < promptQueue.length; i++) {
    const task = promptQueue[i]!;
    if (selected.length === maxBatchSize) break;
    if (selected.length > 0 && batchTokens + task.tokensPerIteration > maxBatchTokens) break;
    if (task.requestEpoch === epoch) continue;
    const needed = task.memoryOn(instance);
    if (needed + memory > maxMemory) break;
    selected.push(task);
    if (markPicked(task, epoch)) batchTaskMarked = true;
    batchTokens += task.tokensPerIteration;
    memory += needed;
  }
  // 3. preempted decodes (they still hold their KV cache)
  const blockedQueue = instance.blockedQueue;
  for (let i = 0; i < blockedQueue.length; i++) {
    const task = blockedQueue[i]!;
    if (selected.length === maxBatchSize) break;
    if (selected.length > 0 && batchTokens + task.tokensPerIteration > maxBatchTokens) break;
    if (task.requestEpoch === epoch) continue;
    selected.push(task);
    if (markPicked(task, epoch)) batchTaskMarked = true;
    batchTokens += task.tokensPerIteration;
  }
  // 4. decodes already running. A batch task's request can only have been picked already through
  // another of its tasks (marked on the tasks in passes 1-3), so the task's own mark is enough and
  // the request object is not touched. When no batch task was marked and the whole batch fits the
  // limits, every running task stays and the walk is skipped (the common case).
  const running = instance.batchCount;
  let picked = selected.length;
  let keptFromBatch = 0;
  let pass4Stopped = false;
  const allStay =
    !batchTaskMarked &&
    picked + running <= maxBatchSize &&
    (running === 0 ||
      (picked === 0 && running === 1) ||
      batchTokens + instance.batchPromptTokens + instance.tokenTasksInBatch <= maxBatchTokens);
  if (allStay) {
    keptFromBatch = running;
    picked += running;
    batchTokens += instance.batchPromptTokens + instance.tokenTasksInBatch;
  } else {
    const batch = instance.batch;
    for (let i = 0; i < batch.length; i++) {
      const task = batch[i]!;
      if (picked === maxBatchSize || (picked > 0 && batchTokens + task.tokensPerIteration > maxBatchTokens)) {
        pass4Stopped = true;
        break;
      }
      if (task.requestEpoch === epoch) continue;
      selected.push(task);
      picked++;
      task.requestEpoch = epoch;
      batchTokens += task.tokensPerIteration;
      keptFromBatch++;
    }
  }
  // 5. anything else, by request arrival: the requests not picked yet, first task first. Unless
  // pass 4 stopped early, those are exactly the waiting tasks that head their request, so only
  // they are visited (in the arrival order of the instance's request list), not every request.
  const candidates = candidatesScratch;
  candidates.clear();
  // The pending heads marked in passes 1-3 are all there is when the counts agree (pass 4 marks
  // only running tasks), and then the walk would find nothing.
  if (!pass4Stopped && instance.pendingHeadCount > pendingHeadsMarked) {
    for (let i = 0; i < pendingQueue.length; i++) {
      const task = pendingQueue[i]!;
      if (task.headsPool && task.requestEpoch !== epoch) candidates.push(task);
    }
    if (candidates.length > 1) sortByRequestOrder(instance, candidates);
  }
  const pass5 = pass4Stopped || candidates.length > 0;
  // Upstream stops at the first request whose memory does not fit. When decode caches are reserved
  // up front, decodes that already hold their cache may still pass it (they need no memory), or
  // they could wait forever behind a prefill that waits for their memory (a deadlock); new
  // admissions stay first-come-first-served.
  const overtake = instance.reserveDecodeUpFront;
  let memoryFull = false;
  if (pass4Stopped) {
    for (let i = 0; i < selected.length; i++) selected.items[i]!.request.selectionEpoch = epoch;
    const requests = instance.pendingRequests;
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i]!;
      if (picked === maxBatchSize) break;
      if (request.selectionEpoch === epoch) continue;
      const task = request.poolHead!;
      if (picked > 0 && batchTokens + task.tokensPerIteration > maxBatchTokens) break;
      if (task.state !== TaskState.Blocked) {
        const needed = task.memoryOn(instance);
        if (needed + memory > maxMemory) {
          if (!overtake) break;
          memoryFull = true;
          continue;
        }
        if (memoryFull && needed > 0) continue;
        memory += needed;
      }
      selected.push(task);
      picked++;
      request.selectionEpoch = epoch;
      batchTokens += task.tokensPerIteration;
    }
  } else {
    for (let i = 0; i < candidates.length; i++) {
      const task = candidates.items[i]!;
      if (picked === maxBatchSize) break;
      if (picked > 0 && batchTokens + task.tokensPerIteration > maxBatchTokens) break;
      if (task.state !== TaskState.Blocked) {
        const needed = task.memoryOn(instance);
        if (needed + memory > maxMemory) {
          if (!overtake) break;
          memoryFull = true;
          continue;
        }
        if (memoryFull && needed > 0) continue;
        memory += needed;
      }
      selected.push(task);
      picked++;
      batchTokens += task.tokensPerIteration;
    }
  }
  const picks = selected.items;
  if (keptFromBatch === running && (allStay || !pass5)) {
    // Every running task stays; the new ones are what the other passes picked.
    for (let i = 0; i < selected.length; i++) if (!picks[i]!.inBatch) newTasks.push(picks[i]!);
    return batchTokens;
  }
  for (let i = 0; i < selected.length; i++) picks[i]!.selected = epoch;
  const batch = instance.batch;
  for (let i = 0; i < batch.length; i++) if (batch[i]!.selected !== epoch) preempted.push(batch[i]!);
  for (let i = 0; i < selected.length; i++) if (!picks[i]!.inBatch) newTasks.push(picks[i]!);
  return batchTokens;
}

/** Sorts tasks by their request's place in `pendingRequests` (arrival rank, then insertion order). */
function sortByRequestOrder(instance: Instance, tasks: ScratchList<Task>): void {
  const list = instance.pendingRequests;
  tasks.sortBy((a, b) => {
    const byArrival = a.arrivalRank - b.arrivalRank;
    return byArrival !== 0 ? byArrival < 0 : list.indexOf(a.request) < list.indexOf(b.request);
  });
}

/**
 * A request enters the new batch: marked on each of its tasks here (its pool: the task and its
 * sibling), which is where passes 1-5 look, so the request object is not loaded. True when one of
 * those tasks is running, so pass 4 has to skip it.
 */
function markPicked(task: Task, epoch: number): boolean {
  task.requestEpoch = epoch;
  // Passes 1-3 pick waiting tasks only, so `task` is pending.
  if (task.headsPool) pendingHeadsMarked++;
  const sibling = task.poolSibling;
  if (sibling === null) return task.inBatch;
  sibling.requestEpoch = epoch;
  if (sibling.headsPool && isPending(sibling)) pendingHeadsMarked++;
  return task.inBatch || sibling.inBatch;
}
