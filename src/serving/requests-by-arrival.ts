import { insertAtIndex, insertNumberAtIndex, removeAtIndex, removeNumberAtIndex } from "../core/arrays.ts";
import type { SimRequest } from "./request.ts";

/**
 * An instance's requests with a task there, ordered by arrival time (equal times in insertion
 * order), as upstream keeps them for ORCA admission and the last Splitwise pass. The requests'
 * arrival ranks (`ArrivalRanker`: they order exactly as the times do, equal times equal ranks) are
 * kept alongside in an array of small integers, so the sorted insertions and removals search those
 * instead of touching every request object on the way (cache misses dominated them), and reading a
 * request's own key loads no heap box (V8 boxes a fractional field like `arrivalTime`).
 */
export class RequestsByArrival {
  /** The requests in order (read by batch selection and the schedulers; change it only through here). */
  readonly list: SimRequest[] = [];
  private readonly ranks: number[] = [];

  /** Inserts after every request that arrived at or before it (Python's bisect_right). */
  add(request: SimRequest): void {
    const list = this.list;
    const ranks = this.ranks;
    const rank = request.arrivalRank;
    // Arrivals are nearly monotone: check the tail first.
    if (list.length === 0 || ranks[ranks.length - 1]! <= rank) {
      list.push(request);
      ranks.push(rank);
      return;
    }
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rank < ranks[mid]!) hi = mid;
      else lo = mid + 1;
    }
    insertAtIndex(list, lo, request);
    insertNumberAtIndex(ranks, lo, rank);
  }

  /** Removes `request` (binary search on its rank, then identity among equal ranks); false when absent. */
  remove(request: SimRequest): boolean {
    const list = this.list;
    const ranks = this.ranks;
    const rank = request.arrivalRank;
    let lo = 0;
    let hi = ranks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ranks[mid]! < rank) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < list.length && ranks[i] === rank; i++) {
      if (list[i] === request) {
        removeAtIndex(list, i);
        removeNumberAtIndex(ranks, i);
        return true;
      }
    }
    return false;
  }
}
