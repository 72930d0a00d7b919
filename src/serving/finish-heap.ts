import type { Task } from "./request.ts";

/**
 * The decode tasks of a batch ordered by the step at which they finish (`doneAt`), ties by when they
 * joined the batch (`batchSeq`, i.e. batch order). Hand-written because it is on the simulator's
 * innermost path: an iteration then costs O(log batch) per finishing task instead of a walk over the
 * whole batch.
 *
 * The keys live in a typed array beside the tasks, so sifting compares and moves numbers without
 * loading a task: a batch's tasks are rarely in cache when it runs, and loading one per comparison
 * (and storing its heap position in it) made the heap a tenth of a preemption-heavy run. A task is
 * found for removal by scanning the heap's array of references, which stays in cache.
 */
export class FinishHeap {
  private readonly items: Task[] = [];
  /**
   * Both keys of heap entry i, interleaved: `keys[2i]` its doneAt, `keys[2i+1]` its batchSeq. One
   * array instead of two halves the objects and cache lines an iteration loads from a heap that has
   * gone cold while hundreds of other instances ran.
   */
  private keys = new Float64Array(2 * INITIAL_CAPACITY);

  get size(): number {
    return this.items.length;
  }

  /** The task that finishes first (undefined when empty). */
  peek(): Task | undefined {
    return this.items[0];
  }

  /** The first task's `doneAt` (Infinity when empty), read from the heap's own keys. */
  firstDoneAt(): number {
    return this.items.length === 0 ? Infinity : this.keys[0]!;
  }

  /** Adds `task` with its current `doneAt` and `batchSeq`, which must not change while it is here. */
  push(task: Task): void {
    const index = this.items.length;
    if (2 * index === this.keys.length) this.grow();
    this.items.push(task);
    this.siftUp(index, task, task.doneAt, task.batchSeq);
  }

  pop(): Task | undefined {
    const top = this.items[0];
    if (top === undefined) return undefined;
    this.removeAt(0);
    return top;
  }

  /** Removes `task` if it is here. */
  remove(task: Task): void {
    const index = this.items.indexOf(task);
    if (index >= 0) this.removeAt(index);
  }

  private removeAt(index: number): void {
    const items = this.items;
    const lastIndex = items.length - 1;
    const last = items.pop()!;
    if (index === lastIndex) return;
    const keys = this.keys;
    const doneAt = keys[2 * lastIndex]!;
    const batchSeq = keys[2 * lastIndex + 1]!;
    const parent = (index - 1) >> 1;
    if (index > 0 && before(doneAt, batchSeq, keys[2 * parent]!, keys[2 * parent + 1]!)) {
      this.siftUp(index, last, doneAt, batchSeq);
    } else {
      this.siftDown(index, last, doneAt, batchSeq);
    }
  }

  /** Places `task` (keys `doneAt`, `batchSeq`) at `index` or above it. */
  private siftUp(index: number, task: Task, doneAt: number, batchSeq: number): void {
    const keys = this.keys;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(doneAt, batchSeq, keys[2 * parent]!, keys[2 * parent + 1]!)) break;
      this.moveEntry(parent, index);
      index = parent;
    }
    this.setEntry(index, task, doneAt, batchSeq);
  }

  /** Places `task` (keys `doneAt`, `batchSeq`) at `index` or below it. */
  private siftDown(index: number, task: Task, doneAt: number, batchSeq: number): void {
    const keys = this.keys;
    const size = this.items.length;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= size) break;
      const right = left + 1;
      let child = left;
      if (
        right < size &&
        before(keys[2 * right]!, keys[2 * right + 1]!, keys[2 * left]!, keys[2 * left + 1]!)
      )
        child = right;
      if (!before(keys[2 * child]!, keys[2 * child + 1]!, doneAt, batchSeq)) break;
      this.moveEntry(child, index);
      index = child;
    }
    this.setEntry(index, task, doneAt, batchSeq);
  }

  private moveEntry(from: number, to: number): void {
    this.items[to] = this.items[from]!;
    const keys = this.keys;
    keys[2 * to] = keys[2 * from]!;
    keys[2 * to + 1] = keys[2 * from + 1]!;
  }

  private setEntry(index: number, task: Task, doneAt: number, batchSeq: number): void {
    this.items[index] = task;
    this.keys[2 * index] = doneAt;
    this.keys[2 * index + 1] = batchSeq;
  }

  private grow(): void {
    const keys = new Float64Array(this.keys.length * 2);
    keys.set(this.keys);
    this.keys = keys;
  }
}

/** Room for this many tasks before the key arrays grow (a batch holds tens of decodes). */
const INITIAL_CAPACITY = 64;

function before(doneAt: number, batchSeq: number, otherDoneAt: number, otherSeq: number): boolean {
  return doneAt < otherDoneAt || (doneAt === otherDoneAt && batchSeq < otherSeq);
}
