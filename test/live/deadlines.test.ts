/** The gateway's deadline lists: FIFOs per timeout with one timer each, instead of a timer per request. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Deadlines, Expiring } from "../../src/live/gateway/deadlines.ts";

class Item extends Expiring {
  expiredAt: number | undefined;
  constructor(
    readonly name: string,
    private readonly log: string[],
    private readonly onExpire: () => void = () => {},
  ) {
    super();
  }
  expire(): void {
    this.expiredAt = performance.now();
    this.log.push(this.name);
    this.onExpire();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

void describe("Deadlines", () => {
  void it("expires items in deadline order per timeout, never early, and never a removed one", async () => {
    const deadlines = new Deadlines();
    const log: string[] = [];
    const start = performance.now();
    const a = new Item("a", log);
    const b = new Item("b", log);
    const c = new Item("c", log);
    const short = new Item("short", log);
    deadlines.add(a, 60);
    await sleep(10);
    deadlines.add(b, 60);
    deadlines.add(c, 60);
    deadlines.add(short, 20);
    deadlines.remove(b);
    deadlines.remove(b); // twice is harmless
    await sleep(150);
    assert.deepEqual(log, ["short", "a", "c"]);
    assert.ok(a.expiredAt! - start >= 59, `a after ${a.expiredAt! - start} ms`);
    assert.ok(c.expiredAt! - start >= 69, `c after ${c.expiredAt! - start} ms`);
    assert.equal(b.expiredAt, undefined);
    deadlines.close();
  });

  void it("handles removal of the oldest, the newest and the middle, re-adding, and adds during expiry", async () => {
    const deadlines = new Deadlines();
    const log: string[] = [];
    const items = ["1", "2", "3", "4", "5"].map((name) => new Item(name, log));
    for (const item of items) deadlines.add(item, 30);
    deadlines.remove(items[0]!);
    deadlines.remove(items[4]!);
    deadlines.remove(items[2]!);
    deadlines.add(items[0]!, 30); // back, now the newest
    const late = new Item("late", log);
    const trigger = new Item("trigger", log, () => deadlines.add(late, 60));
    deadlines.add(trigger, 10);
    await sleep(150);
    assert.deepEqual(log, ["trigger", "2", "4", "1", "late"]);
    deadlines.close();
  });

  void it("stops on close: nothing expires afterwards", async () => {
    const deadlines = new Deadlines();
    const log: string[] = [];
    deadlines.add(new Item("x", log), 20);
    deadlines.close();
    await sleep(50);
    assert.deepEqual(log, []);
  });
});
