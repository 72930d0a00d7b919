import { insertAtIndex, insertNumberAtIndex, removeAtIndex, removeNumberAtIndex } from "../core/arrays.ts";
import type { SimRequest } from "./request.ts";

/**
 * An instance's requests with a task there, ordered by arrival time (equal times in insertion
 * order), as upstream keeps them for ORCA admission and the last Splitwise pass. The arrival times
 * are kept alongside in an array of unboxed numbers, so the sorted insertions and removals search
 * those instead of touching every request object on the way (cache misses dominated them).
 */
export class RequestsByArrival {
  /** The requests in order (read by batch selection and the schedulers; change it only through here). */
  readonly list: SimRequest[] = [];
  private readonly arrivals: number[] = [];

  /** Inserts after every request that arrived at or before it (Python's bisect_right). */
  add(request: SimRequest): void {
    const list = this.list;
    const arrivals = this.arrivals;
    const arrival = request.arrivalTime;
    // Arrivals are nearly monotone: check the tail first.
    if (list.length === 0 || arrivals[arrivals.length - 1]! <= arrival) {
      list.push(request);
      arrivals.push(arrival);
      return;
    }
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (arrival < arrivals[mid]!) hi = mid;
      else lo = mid + 1;
    }
    insertAtIndex(list, lo, request);
    insertNumberAtIndex(arrivals, lo, arrival);
  }

  /** Removes `request` (binary search on its time, then identity among equal times); false when absent. */
  remove(request: SimRequest): boolean {
    const list = this.list;
    const arrivals = this.arrivals;
    const arrival = request.arrivalTime;
    let lo = 0;
    let hi = arrivals.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (arrivals[mid]! < arrival) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < list.length && arrivals[i] === arrival; i++) {
      if (list[i] === request) {
        removeAtIndex(list, i);
        removeNumberAtIndex(arrivals, i);
        return true;
      }
    }
    return false;
  }
}
