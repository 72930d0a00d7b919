/**
 * Binary min-heap of events keyed by (time, sequence number), stored in typed arrays.
 *
 * Hand-written because it is the simulator's innermost loop: library heaps allocate one object per
 * event and pop 5-10x slower (see specs/ts-ecosystem.md §5). Equal times pop first-in-first-out
 * (the sequence number breaks ties), so a run is reproducible. Each scheduled event gets a handle
 * (a slot index); `cancel(handle)` removes it in O(log n) by tracking every slot's heap position.
 */
export type EventHandle = number;

export const NO_EVENT: EventHandle = -1;

export class EventQueue<T> {
  private times: Float64Array;
  private seqs: Float64Array;
  /** heap[i] = slot stored at heap position i. */
  private heap: Int32Array;
  /** position[slot] = heap position, or -1 when the slot is free. */
  private position: Int32Array;
  private payloads: (T | undefined)[] = [];
  private freeSlots: number[] = [];
  private size = 0;
  private nextSeq = 0;
  private slotCount = 0;

  constructor(initialCapacity = 1024) {
    this.times = new Float64Array(initialCapacity);
    this.seqs = new Float64Array(initialCapacity);
    this.heap = new Int32Array(initialCapacity);
    this.position = new Int32Array(initialCapacity).fill(-1);
  }

  get length(): number {
    return this.size;
  }

  /** Time of the earliest event (Infinity when empty). */
  peekTime(): number {
    return this.size === 0 ? Infinity : this.times[this.heap[0]!]!;
  }

  push(time: number, payload: T): EventHandle {
    const slot = this.allocateSlot();
    this.times[slot] = time;
    this.seqs[slot] = this.nextSeq++;
    this.payloads[slot] = payload;
    const index = this.size++;
    this.heap[index] = slot;
    this.position[slot] = index;
    this.siftUp(index);
    return slot;
  }

  /** Removes and returns the earliest payload; `lastPoppedTime` holds its time. */
  pop(): T | undefined {
    if (this.size === 0) return undefined;
    const slot = this.heap[0]!;
    this.lastPoppedTime = this.times[slot]!;
    this.removeAt(0);
    return this.release(slot);
  }

  lastPoppedTime = 0;

  /** True while the handle refers to an event still in the queue. */
  isPending(handle: EventHandle): boolean {
    return handle >= 0 && handle < this.slotCount && this.position[handle]! >= 0;
  }

  timeOf(handle: EventHandle): number {
    return this.times[handle]!;
  }

  cancel(handle: EventHandle): boolean {
    if (!this.isPending(handle)) return false;
    this.removeAt(this.position[handle]!);
    this.release(handle);
    return true;
  }

  private release(slot: number): T | undefined {
    const payload = this.payloads[slot];
    this.payloads[slot] = undefined;
    this.position[slot] = -1;
    this.freeSlots.push(slot);
    return payload;
  }

  private allocateSlot(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) return reused;
    if (this.slotCount === this.times.length) this.grow();
    return this.slotCount++;
  }

  private grow(): void {
    const capacity = this.times.length * 2;
    const times = new Float64Array(capacity);
    times.set(this.times);
    const seqs = new Float64Array(capacity);
    seqs.set(this.seqs);
    const heap = new Int32Array(capacity);
    heap.set(this.heap);
    const position = new Int32Array(capacity).fill(-1);
    position.set(this.position);
    this.times = times;
    this.seqs = seqs;
    this.heap = heap;
    this.position = position;
  }

  private removeAt(index: number): void {
    const lastIndex = --this.size;
    if (index === lastIndex) return;
    const moved = this.heap[lastIndex]!;
    this.heap[index] = moved;
    this.position[moved] = index;
    if (index > 0 && this.less(moved, this.heap[(index - 1) >> 1]!)) this.siftUp(index);
    else this.siftDown(index);
  }

  private less(a: number, b: number): boolean {
    const ta = this.times[a]!;
    const tb = this.times[b]!;
    return ta < tb || (ta === tb && this.seqs[a]! < this.seqs[b]!);
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    const slot = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (!this.less(slot, parent)) break;
      heap[index] = parent;
      this.position[parent] = index;
      index = parentIndex;
    }
    heap[index] = slot;
    this.position[slot] = index;
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const size = this.size;
    const slot = heap[index]!;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= size) break;
      const right = left + 1;
      let child = left;
      if (right < size && this.less(heap[right]!, heap[left]!)) child = right;
      const childSlot = heap[child]!;
      if (!this.less(childSlot, slot)) break;
      heap[index] = childSlot;
      this.position[childSlot] = index;
      index = child;
    }
    heap[index] = slot;
    this.position[slot] = index;
  }
}
