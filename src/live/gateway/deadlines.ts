/**
 * Request deadlines without a timer per request. Requests with the same timeout expire in the order
 * they arrived, so each distinct timeout keeps a FIFO (linked through the requests themselves) and
 * one timer for the oldest. Adding and removing a request is O(1) and allocates nothing; the timer
 * is re-armed only when it fires (a request that finishes early just leaves its FIFO).
 */

/** Something with a deadline: the links are Deadlines' own. */
export abstract class Expiring {
  /** When it expires (monotonic ms), while on a FIFO. */
  expiresAtMs = 0;
  older: Expiring | undefined = undefined;
  newer: Expiring | undefined = undefined;
  fifo: Fifo | undefined = undefined;

  /** Called once when the deadline passes, unless removed before. */
  abstract expire(): void;
}

interface Fifo {
  readonly timeoutMs: number;
  oldest: Expiring | undefined;
  newest: Expiring | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class Deadlines {
  private readonly fifos = new Map<number, Fifo>();

  constructor(private readonly nowMs: () => number = () => performance.now()) {}

  /** `item` expires `timeoutMs` from now. */
  add(item: Expiring, timeoutMs: number): void {
    let fifo = this.fifos.get(timeoutMs);
    if (fifo === undefined) {
      fifo = { timeoutMs, oldest: undefined, newest: undefined, timer: undefined };
      this.fifos.set(timeoutMs, fifo);
    }
    item.expiresAtMs = this.nowMs() + timeoutMs;
    item.fifo = fifo;
    item.older = fifo.newest;
    item.newer = undefined;
    if (fifo.newest === undefined) fifo.oldest = item;
    else fifo.newest.newer = item;
    fifo.newest = item;
    if (fifo.timer === undefined) this.arm(fifo, timeoutMs);
  }

  /** Takes `item` off its FIFO (no-op when it is on none). */
  remove(item: Expiring): void {
    const fifo = item.fifo;
    if (fifo === undefined) return;
    if (item.older === undefined) fifo.oldest = item.newer;
    else item.older.newer = item.newer;
    if (item.newer === undefined) fifo.newest = item.older;
    else item.newer.older = item.older;
    item.fifo = item.older = item.newer = undefined;
  }

  /** Stops every timer (what is still on a FIFO never expires). */
  close(): void {
    for (const fifo of this.fifos.values()) clearTimeout(fifo.timer);
    this.fifos.clear();
  }

  private arm(fifo: Fifo, delayMs: number): void {
    // Unreferenced: pending deadlines alone do not keep the process up (open connections do).
    fifo.timer = setTimeout(fire, Math.max(1, Math.ceil(delayMs)), this, fifo).unref();
  }

  /** The FIFO's timer fired: expire what is due, then wait for the next oldest. */
  fire(fifo: Fifo): void {
    fifo.timer = undefined;
    const now = this.nowMs();
    for (let item = fifo.oldest; item !== undefined && item.expiresAtMs <= now; item = fifo.oldest) {
      this.remove(item);
      item.expire();
    }
    if (fifo.oldest === undefined) this.fifos.delete(fifo.timeoutMs);
    else if (fifo.timer === undefined) this.arm(fifo, fifo.oldest.expiresAtMs - now);
  }
}

function fire(deadlines: Deadlines, fifo: Fifo): void {
  deadlines.fire(fifo);
}
