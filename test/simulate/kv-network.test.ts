import assert from "node:assert/strict";
import { test } from "node:test";
import { Clock } from "../../src/core/clock.ts";
import { DedicatedLinks, SharedNics, type NetworkFlow } from "../../src/simulate/kv-network.ts";

function flow(
  source: number,
  destination: number,
  bytes: number,
  done: Map<string, number>,
  name: string,
  clock: Clock,
): NetworkFlow {
  return {
    sourceServer: source,
    destinationServer: destination,
    bytes,
    transferred: () => done.set(name, clock.now),
  };
}

void test("private links: shipments never slow each other down (upstream)", () => {
  const clock = new Clock();
  const done = new Map<string, number>();
  const links = new DedicatedLinks(clock, 100);
  links.start(flow(0, 2, 100, done, "a", clock));
  links.start(flow(1, 2, 100, done, "b", clock));
  clock.run();
  assert.equal(done.get("a"), 1);
  assert.equal(done.get("b"), 1);
});

void test("shared NICs: two shipments into one server split its bandwidth", () => {
  const clock = new Clock();
  const done = new Map<string, number>();
  const network = new SharedNics(clock, 100, 1000);
  network.start(flow(0, 2, 100, done, "a", clock));
  network.start(flow(1, 2, 100, done, "b", clock));
  clock.run();
  assert.equal(done.get("a"), 2);
  assert.equal(done.get("b"), 2);
});

void test("shared NICs: a late shipment slows the first one down, which speeds up again when it ends", () => {
  const clock = new Clock();
  const done = new Map<string, number>();
  const network = new SharedNics(clock, 100, 1000);
  network.start(flow(0, 2, 200, done, "a", clock));
  // At t = 1 the first has 100 bytes left; both then move at 50 B/s; "b" (50 bytes) ends at t = 2,
  // "a" has 50 left and finishes alone at 100 B/s at t = 2.5.
  clock.schedule(1, { onEvent: () => network.start(flow(1, 2, 50, done, "b", clock)) });
  clock.run();
  assert.equal(done.get("b"), 2);
  assert.equal(done.get("a"), 2.5);
});

void test("shared NICs: shipments inside one server use the local interconnect", () => {
  const clock = new Clock();
  const done = new Map<string, number>();
  const network = new SharedNics(clock, 100, 1000);
  network.start(flow(3, 3, 1000, done, "local", clock));
  network.start(flow(0, 1, 100, done, "remote", clock));
  clock.run();
  assert.equal(done.get("local"), 1);
  assert.equal(done.get("remote"), 1);
});
