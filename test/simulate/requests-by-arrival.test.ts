import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import { SimRequest } from "../../src/serving/request.ts";
import { RequestsByArrival } from "../../src/serving/requests-by-arrival.ts";

void describe("RequestsByArrival", () => {
  void it("keeps requests in arrival order, equal times in insertion order, through adds and removals", () => {
    const rng = new Rng(21);
    const byArrival = new RequestsByArrival();
    let reference: SimRequest[] = [];
    for (let step = 0; step < 3000; step++) {
      if (rng.nextFloat() < 0.55 || reference.length === 0) {
        // Mostly later arrivals (the tail fast path), some earlier ones, many equal times.
        const latest = reference.reduce((max, request) => Math.max(max, request.arrivalTime), 0);
        const arrival =
          rng.nextFloat() < 0.8
            ? latest + Math.floor(rng.nextFloat() * 3)
            : Math.floor(rng.nextFloat() * latest);
        // Integer times, so the time itself is a valid arrival rank (equal times, equal ranks).
        const request = new SimRequest(step, arrival, arrival, 10, 10);
        byArrival.add(request);
        // bisect_right: after every request that arrived at or before it.
        const at = reference.findIndex((other) => other.arrivalTime > arrival);
        if (at < 0) reference.push(request);
        else reference.splice(at, 0, request);
      } else {
        const request = reference[Math.floor(rng.nextFloat() * reference.length)]!;
        assert.equal(byArrival.remove(request), true);
        reference = reference.filter((other) => other !== request);
      }
      assert.deepEqual(byArrival.list, reference);
    }
    assert.equal(byArrival.remove(new SimRequest(-1, 1, 1, 10, 10)), false, "a request it does not hold");
  });
});
