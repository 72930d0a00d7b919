import type { Task } from "./request.ts";

/**
 * The decode tasks of a batch ordered by the step at which they finish (`doneAt`), ties by when they
 * joined the batch (`batchSeq`, i.e. batch order). Hand-written because it is on the simulator's
 * innermost path: an iteration then costs O(log batch) per finishing task instead of a walk over the
 * whole batch. Each task stores its heap position, so a preempted task is removed in O(log n).
 */
export class FinishHeap {
  private readonly items: Task[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The task that finishes first (undefined when empty). */
  peek(): Task | undefined {
    return this.items[0];
  }

  push(task: Task): void {
    const items = this.items;
    task.heapIndex = items.length;
    items.push(task);
    this.siftUp(task.heapIndex);
  }

  pop(): Task | undefined {
    const items = this.items;
    const top = items[0];
    if (top === undefined) return undefined;
    this.removeAt(0);
    return top;
  }

  remove(task: Task): void {
    const index = task.heapIndex;
    if (index < 0 || this.items[index] !== task) return;
    this.removeAt(index);
  }

  private removeAt(index: number): void {
    const items = this.items;
    const removed = items[index]!;
    removed.heapIndex = -1;
    const last = items.pop()!;
    if (index === items.length) return;
    items[index] = last;
    last.heapIndex = index;
    if (index > 0 && before(last, items[(index - 1) >> 1]!)) this.siftUp(index);
    else this.siftDown(index);
  }

  private siftUp(index: number): void {
    const items = this.items;
    const task = items[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = items[parentIndex]!;
      if (!before(task, parent)) break;
      items[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    items[index] = task;
    task.heapIndex = index;
  }

  private siftDown(index: number): void {
    const items = this.items;
    const size = items.length;
    const task = items[index]!;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= size) break;
      const right = left + 1;
      let child = left;
      if (right < size && before(items[right]!, items[left]!)) child = right;
      const childTask = items[child]!;
      if (!before(childTask, task)) break;
      items[index] = childTask;
      childTask.heapIndex = index;
      index = child;
    }
    items[index] = task;
    task.heapIndex = index;
  }
}

function before(a: Task, b: Task): boolean {
  return a.doneAt < b.doneAt || (a.doneAt === b.doneAt && a.batchSeq < b.batchSeq);
}
