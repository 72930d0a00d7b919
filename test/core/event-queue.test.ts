import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Clock, type EventTarget } from "../../src/core/clock.ts";
import { EventQueue, NO_EVENT } from "../../src/core/event-queue.ts";
import { Rng } from "../../src/core/rng.ts";

function drain<T>(queue: EventQueue<T>): { time: number; payload: T }[] {
  const out: { time: number; payload: T }[] = [];
  for (let payload = queue.pop(); payload !== undefined; payload = queue.pop()) {
    out.push({ time: queue.lastPoppedTime, payload });
  }
  return out;
}

void describe("EventQueue", () => {
  void it("pops in time order and equal times first-in-first-out", () => {
    const queue = new EventQueue<string>();
    queue.push(2, "c");
    queue.push(1, "a");
    queue.push(2, "d");
    queue.push(1, "b");
    queue.push(0.5, "first");
    queue.push(2, "e");
    assert.equal(queue.length, 6);
    assert.equal(queue.peekTime(), 0.5);
    assert.deepEqual(
      drain(queue).map((event) => event.payload),
      ["first", "a", "b", "c", "d", "e"],
    );
    assert.equal(queue.length, 0);
    assert.equal(queue.peekTime(), Infinity);
    assert.equal(queue.pop(), undefined);
  });

  void it("keeps FIFO among many equal times, including after cancellations", () => {
    const queue = new EventQueue<number>(8);
    const handles = Array.from({ length: 500 }, (_, i) => queue.push(7, i));
    for (let i = 0; i < 500; i += 3) assert.equal(queue.cancel(handles[i]!), true);
    const expected = Array.from({ length: 500 }, (_, i) => i).filter((i) => i % 3 !== 0);
    assert.deepEqual(
      drain(queue).map((event) => event.payload),
      expected,
    );
  });

  void it("cancels by handle: the event never pops, the rest keep their order", () => {
    const queue = new EventQueue<string>();
    const a = queue.push(1, "a");
    const b = queue.push(2, "b");
    const c = queue.push(3, "c");
    assert.equal(queue.isPending(b), true);
    assert.equal(queue.timeOf(b), 2);
    assert.equal(queue.cancel(b), true);
    assert.equal(queue.isPending(b), false);
    assert.equal(queue.cancel(b), false, "a second cancel is a no-op");
    assert.equal(queue.cancel(NO_EVENT), false);
    assert.equal(queue.cancel(12345), false, "unknown handles are ignored");
    assert.equal(queue.length, 2);
    assert.equal(queue.cancel(a), true, "cancelling the head");
    assert.equal(queue.peekTime(), 3);
    assert.deepEqual(
      drain(queue).map((event) => event.payload),
      ["c"],
    );
    assert.equal(queue.isPending(c), false, "a popped event is no longer pending");
  });

  void it("reschedules (cancel + push) to an earlier or later time", () => {
    const queue = new EventQueue<string>();
    const x = queue.push(5, "x");
    queue.push(3, "y");
    queue.push(8, "z");
    // Earlier: x moves in front of y.
    assert.equal(queue.cancel(x), true);
    const x2 = queue.push(1, "x");
    assert.equal(queue.timeOf(x2), 1);
    // Later, to a time equal to z's: it was pushed after z, so it pops after z.
    assert.equal(queue.cancel(x2), true);
    queue.push(8, "x");
    assert.deepEqual(drain(queue), [
      { time: 3, payload: "y" },
      { time: 8, payload: "z" },
      { time: 8, payload: "x" },
    ]);
  });

  void it("grows past its initial capacity and reuses freed slots", () => {
    const queue = new EventQueue<number>(2);
    for (let i = 0; i < 5000; i++) queue.push((i * 7919) % 5000, i);
    assert.equal(queue.length, 5000);
    const popped = drain(queue);
    assert.equal(popped.length, 5000);
    for (let i = 1; i < popped.length; i++) assert.ok(popped[i - 1]!.time <= popped[i]!.time);
    // Slots freed by pops are recycled: another round fits without losing anything.
    for (let i = 0; i < 5000; i++) queue.push(5000 - i, i);
    assert.deepEqual(
      drain(queue).map((event) => event.payload),
      Array.from({ length: 5000 }, (_, i) => 4999 - i),
    );
  });

  void it("matches a sorted reference under random pushes, pops and cancellations", () => {
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      const queue = new EventQueue<number>(4);
      // Reference: pending events as (time, seq, id), popped by the smallest (time, seq).
      let reference: { time: number; seq: number; id: number; handle: number }[] = [];
      let seq = 0;
      let nextId = 0;
      for (let step = 0; step < 20_000; step++) {
        const action = rng.nextFloat();
        if (action < 0.5 || reference.length === 0) {
          // Coarse times make ties frequent.
          const time = rng.nextInt(50) / 4;
          const id = nextId++;
          const handle = queue.push(time, id);
          reference.push({ time, seq: seq++, id, handle });
        } else if (action < 0.8) {
          let best = 0;
          for (let i = 1; i < reference.length; i++) {
            const event = reference[i]!;
            const current = reference[best]!;
            if (event.time < current.time || (event.time === current.time && event.seq < current.seq))
              best = i;
          }
          const expected = reference[best]!;
          reference.splice(best, 1);
          assert.equal(queue.peekTime(), expected.time, `seed ${seed} step ${step} peek`);
          assert.equal(queue.pop(), expected.id, `seed ${seed} step ${step} pop`);
          assert.equal(queue.lastPoppedTime, expected.time);
        } else {
          const victim = reference[rng.nextInt(reference.length)]!;
          assert.equal(queue.cancel(victim.handle), true, `seed ${seed} step ${step} cancel`);
          reference = reference.filter((event) => event !== victim);
        }
        assert.equal(queue.length, reference.length);
      }
      const rest = drain(queue).map((event) => event.payload);
      reference.sort((a, b) => a.time - b.time || a.seq - b.seq);
      assert.deepEqual(
        rest,
        reference.map((event) => event.id),
      );
    }
  });

  void it("cancels with O(log n) comparisons (counted, not timed)", (t) => {
    // Counts calls of the heap's private comparator; skips if the implementation renames it.
    const proto = EventQueue.prototype as unknown as { less?: (a: number, b: number) => boolean };
    const original = proto.less;
    if (typeof original !== "function") {
      t.skip("EventQueue has no `less` comparator to count");
      return;
    }
    const n = 1 << 16;
    const queue = new EventQueue<number>(n);
    const rng = new Rng(9);
    const handles: number[] = [];
    for (let i = 0; i < n; i++) handles.push(queue.push(rng.nextFloat() * 1000, i));
    let comparisons = 0;
    proto.less = function (this: unknown, a: number, b: number): boolean {
      comparisons++;
      return original.call(this, a, b);
    };
    try {
      let worst = 0;
      for (let i = 0; i < 1000; i++) {
        comparisons = 0;
        // 40503 is odd, so i * 40503 mod 2^16 visits distinct handles.
        assert.equal(queue.cancel(handles[(i * 40503) % n]!), true);
        worst = Math.max(worst, comparisons);
      }
      // A sift down visits at most log2(n) = 16 levels with two comparisons each, plus one sift-up test.
      assert.ok(worst <= 2 * 16 + 2, `cancel used ${worst} comparisons on a heap of ${n}`);
      assert.equal(queue.length, n - 1000);
    } finally {
      proto.less = original;
    }
  });
});

class Recorder implements EventTarget {
  readonly fired: [number, number][] = [];
  onEvent(kind: number, clock: Clock): void {
    this.fired.push([clock.now, kind]);
  }
}

void describe("Clock", () => {
  void it("fires targets in (time, sequence) order and advances now", () => {
    const clock = new Clock();
    const recorder = new Recorder();
    clock.schedule(2, recorder, 1);
    clock.schedule(1, recorder, 2);
    clock.schedule(2, recorder, 3);
    clock.scheduleAt(0.5, recorder, 4);
    clock.run();
    assert.deepEqual(recorder.fired, [
      [0.5, 4],
      [1, 2],
      [2, 1],
      [2, 3],
    ]);
    assert.equal(clock.now, 2);
    assert.equal(clock.eventsProcessed, 4);
  });

  void it("schedules relative to now from inside a handler, zero delays run after same-time events", () => {
    const clock = new Clock();
    const order: string[] = [];
    const chain: EventTarget = {
      onEvent(kind, sim) {
        order.push(`${kind}@${sim.now}`);
        if (kind === 0) {
          sim.schedule(0, chain, 9);
          sim.schedule(1, chain, 8);
        }
      },
    };
    clock.schedule(1, chain, 0);
    clock.schedule(1, chain, 1);
    clock.run();
    assert.deepEqual(order, ["0@1", "1@1", "9@1", "8@2"]);
  });

  void it("cancel and reschedule (pauseIteration's pattern) keep the remaining order", () => {
    const clock = new Clock();
    const recorder = new Recorder();
    const handle = clock.schedule(10, recorder, 1);
    clock.schedule(5, recorder, 2);
    assert.equal(clock.isPending(handle), true);
    assert.equal(clock.timeOf(handle), 10);
    clock.cancel(handle);
    clock.cancel(NO_EVENT);
    assert.equal(clock.isPending(handle), false);
    clock.schedule(3, recorder, 1);
    assert.equal(clock.pendingEvents, 2);
    assert.equal(clock.nextEventTime(), 3);
    clock.run();
    assert.deepEqual(recorder.fired, [
      [3, 1],
      [5, 2],
    ]);
  });

  void it("run(until) fires events at until and leaves later ones pending", () => {
    const clock = new Clock();
    const recorder = new Recorder();
    for (const t of [1, 2, 3, 4]) clock.scheduleAt(t, recorder, t);
    clock.run(3);
    assert.deepEqual(
      recorder.fired.map(([, kind]) => kind),
      [1, 2, 3],
    );
    assert.equal(
      clock.now,
      3,
      "the clock does not jump past the stop time (upstream would run the t=4 event)",
    );
    assert.equal(clock.pendingEvents, 1);
    assert.equal(clock.step(), true);
    assert.equal(clock.step(), false);
    assert.equal(clock.now, 4);
  });
});
