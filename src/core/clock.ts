import { EventQueue, NO_EVENT, type EventHandle } from "./event-queue.ts";

/** Something that reacts to a scheduled event. Objects (not closures) keep the hot path allocation-free. */
export interface EventTarget {
  onEvent(kind: number, sim: Clock): void;
}

interface ScheduledEvent {
  target: EventTarget;
  kind: number;
}

/**
 * The simulation clock and event loop. It knows nothing about LLMs: targets register callbacks
 * and the loop fires them in (time, sequence) order.
 */
export class Clock {
  now = 0;
  eventsProcessed = 0;
  private readonly queue = new EventQueue<ScheduledEvent>();
  private readonly pool: ScheduledEvent[] = [];

  /** Schedules `target.onEvent(kind)` after `delay_s` seconds. */
  schedule(delay_s: number, target: EventTarget, kind = 0): EventHandle {
    return this.scheduleAt(this.now + delay_s, target, kind);
  }

  scheduleAt(time_s: number, target: EventTarget, kind = 0): EventHandle {
    const event = this.pool.pop() ?? { target, kind };
    event.target = target;
    event.kind = kind;
    return this.queue.push(time_s, event);
  }

  cancel(handle: EventHandle): void {
    if (handle !== NO_EVENT) this.queue.cancel(handle);
  }

  isPending(handle: EventHandle): boolean {
    return this.queue.isPending(handle);
  }

  timeOf(handle: EventHandle): number {
    return this.queue.timeOf(handle);
  }

  get pendingEvents(): number {
    return this.queue.length;
  }

  nextEventTime(): number {
    return this.queue.peekTime();
  }

  /** Fires one event; returns false when nothing is left before `until_s`. */
  step(until_s = Infinity): boolean {
    if (this.queue.peekTime() > until_s) return false;
    const event = this.queue.pop();
    if (event === undefined) return false;
    this.now = this.queue.lastPoppedTime;
    this.eventsProcessed++;
    const { target, kind } = event;
    this.pool.push(event);
    target.onEvent(kind, this);
    return true;
  }

  run(until_s = Infinity): void {
    while (this.step(until_s));
  }

  /** Moves time forward to `time_s` without firing anything (no event may be due before it). */
  advanceTo(time_s: number): void {
    if (time_s < this.now) throw new RangeError(`cannot move time back from ${this.now} to ${time_s}`);
    if (this.queue.peekTime() < time_s)
      throw new RangeError(`an event is due at ${this.queue.peekTime()}, before ${time_s}`);
    this.now = time_s;
  }
}
