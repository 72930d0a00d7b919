import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import { FinishHeap } from "../../src/serving/finish-heap.ts";
import { SimRequest, type Task } from "../../src/serving/request.ts";

/** A decode task with the two keys the heap orders by. */
function decode(doneAt: number, batchSeq: number): Task {
  const task = new SimRequest(batchSeq, 0, 1, 10, 20).token;
  task.doneAt = doneAt;
  task.batchSeq = batchSeq;
  return task;
}

function byFinish(a: Task, b: Task): number {
  return a.doneAt - b.doneAt || a.batchSeq - b.batchSeq;
}

void describe("FinishHeap", () => {
  void it("pops in (doneAt, batchSeq) order through random pushes, pops and removals", () => {
    const rng = new Rng(3);
    const heap = new FinishHeap();
    let reference: Task[] = [];
    let seq = 0;
    for (let step = 0; step < 20_000; step++) {
      const roll = rng.nextFloat();
      if (roll < 0.5 || reference.length === 0) {
        // Few distinct finish steps, so ties on doneAt are common.
        const task = decode(Math.floor(rng.nextFloat() * 20), seq++);
        heap.push(task);
        reference.push(task);
      } else if (roll < 0.75) {
        reference.sort(byFinish);
        assert.equal(heap.firstDoneAt(), reference[0]!.doneAt);
        assert.equal(heap.pop(), reference.shift());
      } else {
        const task = reference[Math.floor(rng.nextFloat() * reference.length)]!;
        heap.remove(task);
        reference = reference.filter((other) => other !== task);
      }
      assert.equal(heap.size, reference.length);
      if (step % 5000 === 0) {
        // Fill up past the initial key capacity (64), so the key arrays grow under load.
        while (reference.length < 150) {
          const task = decode(3, seq++);
          heap.push(task);
          reference.push(task);
        }
      }
    }
    reference.sort(byFinish);
    for (const task of reference) assert.equal(heap.pop(), task);
    assert.equal(heap.pop(), undefined);
    assert.equal(heap.firstDoneAt(), Infinity);
  });

  void it("ignores the removal of a task it does not hold", () => {
    const heap = new FinishHeap();
    const held = decode(5, 1);
    heap.push(held);
    heap.remove(decode(1, 2));
    assert.equal(heap.size, 1);
    assert.equal(heap.peek(), held);
  });
});
