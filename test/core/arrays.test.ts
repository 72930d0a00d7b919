import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ScratchList,
  insertAtIndex,
  insertNumberAtIndex,
  removeAtIndex,
  removeItem,
  removeNumberAtIndex,
} from "../../src/core/arrays.ts";
import { Rng } from "../../src/core/rng.ts";
import { MinIndexTree } from "../../src/serving/schedulers/load-index.ts";

void describe("in-place list edits", () => {
  void it("match splice on random edits", () => {
    const rng = new Rng(7);
    const ours: number[] = [];
    const reference: number[] = [];
    for (let step = 0; step < 2000; step++) {
      const roll = rng.nextFloat();
      if (roll < 0.5 || ours.length === 0) {
        const index = Math.floor(rng.nextFloat() * (ours.length + 1));
        insertAtIndex(ours, index, step);
        reference.splice(index, 0, step);
      } else if (roll < 0.8) {
        const index = Math.floor(rng.nextFloat() * ours.length);
        removeAtIndex(ours, index);
        reference.splice(index, 1);
      } else {
        const item = reference[Math.floor(rng.nextFloat() * reference.length)]!;
        assert.equal(removeItem(ours, item), true);
        reference.splice(reference.indexOf(item), 1);
      }
      assert.deepEqual(ours, reference);
    }
    assert.equal(removeItem(ours, -1), false);
  });

  void it("number versions match splice on random edits of fractional values", () => {
    const rng = new Rng(9);
    const ours: number[] = [];
    const reference: number[] = [];
    for (let step = 0; step < 2000; step++) {
      if (rng.nextFloat() < 0.55 || ours.length === 0) {
        const index = Math.floor(rng.nextFloat() * (ours.length + 1));
        const value = rng.nextFloat() * 100;
        insertNumberAtIndex(ours, index, value);
        reference.splice(index, 0, value);
      } else {
        const index = Math.floor(rng.nextFloat() * ours.length);
        removeNumberAtIndex(ours, index);
        reference.splice(index, 1);
      }
      assert.deepEqual(ours, reference);
    }
  });
});

void describe("ScratchList", () => {
  void it("behaves like an array through random pushes, removals and clears", () => {
    const rng = new Rng(11);
    const list = new ScratchList<number>();
    let reference: number[] = [];
    for (let step = 0; step < 3000; step++) {
      const roll = rng.nextFloat();
      if (roll < 0.6) {
        list.push(step);
        reference.push(step);
      } else if (roll < 0.8 && reference.length > 0) {
        const item = reference[Math.floor(rng.nextFloat() * reference.length)]!;
        assert.equal(list.remove(item), true);
        reference.splice(reference.indexOf(item), 1);
      } else if (roll < 0.85) {
        list.clear();
        reference = [];
      }
      assert.equal(list.length, reference.length);
      assert.deepEqual(list.toArray(), reference);
      if (reference.length > 0) assert.equal(list.at(reference.length - 1), reference.at(-1));
    }
  });

  void it("does not find a cleared element still held in its storage", () => {
    const list = new ScratchList<string>();
    list.push("a");
    list.push("b");
    list.clear();
    list.push("c");
    assert.equal(list.remove("b"), false);
    assert.deepEqual(list.toArray(), ["c"]);
  });

  void it("sorts stably, as Array.prototype.sort does", () => {
    const rng = new Rng(5);
    for (let trial = 0; trial < 200; trial++) {
      const list = new ScratchList<{ key: number; order: number }>();
      const count = Math.floor(rng.nextFloat() * 12);
      // Stale elements beyond the live length must not take part.
      for (let i = 0; i < 5; i++) list.push({ key: -1, order: -1 });
      list.clear();
      const reference: { key: number; order: number }[] = [];
      for (let i = 0; i < count; i++) {
        const item = { key: Math.floor(rng.nextFloat() * 4), order: i };
        list.push(item);
        reference.push(item);
      }
      list.sortBy((a, b) => a.key < b.key);
      reference.sort((a, b) => a.key - b.key);
      assert.deepEqual(list.toArray(), reference);
    }
  });
});

void describe("MinIndexTree", () => {
  const firstMinimum = (keys: number[]): number => {
    let best = -1;
    for (let i = 0; i < keys.length; i++) if (best < 0 || keys[i]! < keys[best]!) best = i;
    return best;
  };

  void it("returns the first minimum, like a linear scan, under random updates", () => {
    const rng = new Rng(11);
    for (const size of [1, 2, 3, 5, 8, 13, 400]) {
      const tree = new MinIndexTree(size);
      const keys = new Array<number>(size).fill(Infinity);
      assert.equal(tree.min, 0, "all keys Infinity: the first slot");
      for (let step = 0; step < 3000; step++) {
        const slot = Math.floor(rng.nextFloat() * size);
        // Few distinct values, so ties are common and must go to the lowest slot.
        const key = Math.floor(rng.nextFloat() * 5);
        tree.set(slot, key);
        keys[slot] = key;
        assert.equal(tree.min, firstMinimum(keys), `size ${size}, step ${step}`);
        assert.equal(tree.keyOf(slot), key);
      }
    }
  });

  void it("has no minimum when empty", () => {
    assert.equal(new MinIndexTree(0).min, -1);
  });
});
