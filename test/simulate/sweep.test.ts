import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_SWEEP_POINTS, parseSweepAxis, sweepPoints } from "../../src/simulate/sweep.ts";

void describe("sweep grids", () => {
  void it("reads a list of values and an inclusive START:STOP:STEP range", () => {
    assert.deepEqual(parseSweepAxis("scheduler.name=jsq, token_jsq"), {
      key: "scheduler.name",
      values: ["jsq", "token_jsq"],
    });
    assert.deepEqual(parseSweepAxis("workload.arrival.rate_per_s=4:16:4").values, ["4", "8", "12", "16"]);
    // Float steps print as written, and STOP counts when it falls on a step despite rounding.
    assert.deepEqual(parseSweepAxis("workload.time_scale=0.1:0.3:0.1").values, ["0.1", "0.2", "0.3"]);
    assert.deepEqual(parseSweepAxis("k=1:2:0.4").values, ["1", "1.4", "1.8"]);
  });

  void it("refuses malformed axes with the flag and the reason", () => {
    const cases: [string, RegExp][] = [
      ["rate", /KEY=V1,V2/],
      ["=1,2", /KEY=V1,V2/],
      ["rate=", /KEY=V1,V2/],
      ["rate=1,,2", /empty value/],
      ["rate=1,2,1", /listed twice/],
      ["rate=1:4:0", /STEP > 0/],
      ["rate=4:1:1", /STOP >= START/],
      [`rate=1:${MAX_SWEEP_POINTS + 1}:1`, /more than/],
    ];
    for (const [text, message] of cases) assert.throws(() => parseSweepAxis(text), message, text);
  });

  void it("runs every combination, the first axis slowest, with readable labels", () => {
    const points = sweepPoints([
      parseSweepAxis("workload.arrival.rate_per_s=4,8"),
      parseSweepAxis("cluster.servers.0.count=2,4,6"),
    ]);
    assert.equal(points.length, 6);
    assert.deepEqual(points[0]!.overrides, ["workload.arrival.rate_per_s=4", "cluster.servers.0.count=2"]);
    assert.deepEqual(
      points.map((point) => point.label),
      ["rate_per_s=4,count=2", "rate_per_s=4,count=4", "rate_per_s=4,count=6"].concat([
        "rate_per_s=8,count=2",
        "rate_per_s=8,count=4",
        "rate_per_s=8,count=6",
      ]),
    );
  });

  void it("labels keys that end alike by enough of their path", () => {
    const [point] = sweepPoints([parseSweepAxis("a.x.count=1"), parseSweepAxis("b.x.count=2")]);
    assert.equal(point!.label, "a.x.count=1,b.x.count=2");
    const [other] = sweepPoints([parseSweepAxis("prefill.count=1"), parseSweepAxis("decode.count=2")]);
    assert.equal(other!.label, "prefill.count=1,decode.count=2");
  });

  void it("refuses no axes, a key varied twice and grids over the limit", () => {
    assert.throws(() => sweepPoints([]), /at least one/);
    assert.throws(() => sweepPoints([parseSweepAxis("k=1,2"), parseSweepAxis("k=3")]), /varied twice/);
    const big = parseSweepAxis("a=1:100:1");
    assert.throws(() => sweepPoints([big, parseSweepAxis("b=1:11:1")]), /1100 combinations/);
  });
});
