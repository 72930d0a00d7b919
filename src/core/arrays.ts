/**
 * In-place list edits for the simulator's hot path. `Array.prototype.splice` allocates an array of
 * the removed elements on every call and `list.length = 0` goes through a generic runtime builtin;
 * on the per-iteration queues (tens of elements) these showed up as about a tenth of a large run's
 * time, mostly as garbage. Shifting by hand keeps the arrays packed and allocates nothing.
 */

/** Removes the element at `index` (0 <= index < length), keeping order. */
export function removeAtIndex<T>(list: T[], index: number): void {
  const last = list.length - 1;
  for (let i = index; i < last; i++) list[i] = list[i + 1]!;
  list.pop();
}

/** Inserts `item` before position `index` (0 <= index <= length), keeping order. */
export function insertAtIndex<T>(list: T[], index: number, item: T): void {
  let i = list.length;
  list.push(item);
  for (; i > index; i--) list[i] = list[i - 1]!;
  list[index] = item;
}

/**
 * `removeAtIndex` and `insertAtIndex` for arrays of numbers, kept apart on purpose: once the generic
 * versions have been optimized for arrays of objects as well, V8 generalizes every array they touch
 * to tagged elements, so a number array passed to them ends up holding each value in its own heap
 * box, and searching it loads a box per probe. Used only with number arrays, these stay unboxed.
 */
export function removeNumberAtIndex(list: number[], index: number): void {
  const last = list.length - 1;
  for (let i = index; i < last; i++) list[i] = list[i + 1]!;
  list.pop();
}

/** See `removeNumberAtIndex`. */
export function insertNumberAtIndex(list: number[], index: number, value: number): void {
  let i = list.length;
  list.push(value);
  for (; i > index; i--) list[i] = list[i - 1]!;
  list[index] = value;
}

/** Removes the first occurrence of `item`; false when absent. */
export function removeItem<T>(list: T[], item: T): boolean {
  const index = list.indexOf(item);
  if (index < 0) return false;
  removeAtIndex(list, index);
  return true;
}

/**
 * A list emptied and refilled on every simulator iteration. V8 right-trims an array's storage when
 * pops leave it less than half full, so a plain array cleared and refilled each iteration allocates a
 * new backing store almost every time (a large share of a big run's garbage). This one keeps its
 * storage and a separate length; cleared slots keep stale references until they are overwritten.
 */
export class ScratchList<T> {
  readonly items: T[] = [];
  length = 0;

  push(item: T): void {
    if (this.length < this.items.length) this.items[this.length] = item;
    else this.items.push(item);
    this.length++;
  }

  clear(): void {
    this.length = 0;
  }

  /** Removes the first occurrence of `item`, keeping the others' order; false when absent. */
  remove(item: T): boolean {
    const items = this.items;
    const index = items.indexOf(item);
    if (index < 0 || index >= this.length) return false;
    for (let i = index; i < this.length - 1; i++) items[i] = items[i + 1]!;
    this.length--;
    return true;
  }

  /** The element at `index` (0 <= index < length). */
  at(index: number): T {
    return this.items[index]!;
  }

  /** A copy of the live elements (for tests and diagnostics, not the hot path). */
  toArray(): T[] {
    return this.items.slice(0, this.length);
  }

  /**
   * Stable insertion sort of the live elements: the lists sorted on the hot path hold a handful of
   * elements, and `Array.prototype.sort` allocates a work array on every call.
   */
  sortBy(before: (a: T, b: T) => boolean): void {
    const items = this.items;
    for (let i = 1; i < this.length; i++) {
      const item = items[i]!;
      let j = i - 1;
      while (j >= 0 && before(item, items[j]!)) {
        items[j + 1] = items[j]!;
        j--;
      }
      items[j + 1] = item;
    }
  }
}
