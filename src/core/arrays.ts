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

/** Removes the first occurrence of `item`; false when absent. */
export function removeItem<T>(list: T[], item: T): boolean {
  const index = list.indexOf(item);
  if (index < 0) return false;
  removeAtIndex(list, index);
  return true;
}

/** Empties a scratch list without the generic length setter (pops are inlined by the JIT). */
export function clearList<T>(list: T[]): void {
  while (list.length !== 0) list.pop();
}
