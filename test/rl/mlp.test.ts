import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import { categoricalLogProb, gaussianLogProb } from "../../src/rl/actor.ts";
import { Adam, clipGradNorm, Mlp } from "../../src/rl/mlp.ts";

/** A scalar loss of the network output: a fixed random projection, so every output matters. */
function lossOf(net: Mlp, x: Float64Array, projection: Float64Array): number {
  const out = net.forward(x);
  let loss = 0;
  for (let i = 0; i < out.length; i++) loss += projection[i]! * out[i]! + 0.5 * out[i]! * out[i]!;
  return loss;
}

void describe("Mlp", () => {
  void it("matches finite differences on every parameter (gradient check)", () => {
    const rng = new Rng(11);
    const net = new Mlp([5, 7, 6, 3]).initialize(rng, 1);
    const x = Float64Array.from({ length: 5 }, () => rng.normal());
    const projection = Float64Array.from({ length: 3 }, () => rng.normal());
    const out = net.forward(x);
    const outGrad = Float64Array.from(out, (value, i) => projection[i]! + value);
    const grad = new Float64Array(net.params.length);
    net.backward(outGrad, grad);
    const h = 1e-6;
    let worst = 0;
    for (let p = 0; p < net.params.length; p++) {
      const saved = net.params[p]!;
      net.params[p] = saved + h;
      const plus = lossOf(net, x, projection);
      net.params[p] = saved - h;
      const minus = lossOf(net, x, projection);
      net.params[p] = saved;
      const numeric = (plus - minus) / (2 * h);
      const error = Math.abs(numeric - grad[p]!) / Math.max(1e-6, Math.abs(numeric) + Math.abs(grad[p]!));
      worst = Math.max(worst, error);
    }
    assert.ok(worst < 1e-5, `worst relative gradient error ${worst}`);
  });

  void it("accumulates gradients over samples", () => {
    const net = new Mlp([2, 3, 1]).initialize(new Rng(1));
    const grad = new Float64Array(net.params.length);
    const single = new Float64Array(net.params.length);
    net.forward([0.3, -0.2]);
    net.backward([1], grad);
    net.backward([1], single);
    net.forward([0.3, -0.2]);
    net.backward([1], grad);
    for (let i = 0; i < grad.length; i++) assert.ok(Math.abs(grad[i]! - 2 * single[i]!) < 1e-12);
  });

  void it("gradient of the Gaussian and categorical log-probabilities match finite differences", () => {
    const output = [0.3, -1.2];
    const action = [0.5, -0.4];
    const grad = new Float64Array(2);
    gaussianLogProb(output, action, 0.4, grad);
    for (let j = 0; j < 2; j++) {
      const plus = [...output];
      const minus = [...output];
      plus[j]! += 1e-6;
      minus[j]! -= 1e-6;
      const numeric = (gaussianLogProb(plus, action, 0.4) - gaussianLogProb(minus, action, 0.4)) / 2e-6;
      assert.ok(Math.abs(numeric - grad[j]!) < 1e-6);
    }
    const logits = [0.2, -0.5, 1.1, 0.0, 0.3, -0.7];
    const choices = [2, 0];
    const gLogp = new Float64Array(6);
    const gEntropy = new Float64Array(6);
    categoricalLogProb(logits, choices, gLogp, gEntropy);
    for (let k = 0; k < 6; k++) {
      const plus = [...logits];
      const minus = [...logits];
      plus[k]! += 1e-6;
      minus[k]! -= 1e-6;
      const a = categoricalLogProb(plus, choices);
      const b = categoricalLogProb(minus, choices);
      assert.ok(Math.abs((a.logp - b.logp) / 2e-6 - gLogp[k]!) < 1e-6, `logp grad ${k}`);
      assert.ok(Math.abs((a.entropy - b.entropy) / 2e-6 - gEntropy[k]!) < 1e-6, `entropy grad ${k}`);
    }
  });

  void it("Adam minimizes a quadratic and clipGradNorm bounds the norm", () => {
    const params = Float64Array.from([3, -2]);
    const adam = new Adam(2, 0.1);
    const grad = new Float64Array(2);
    for (let step = 0; step < 500; step++) {
      grad[0] = 2 * params[0]!;
      grad[1] = 2 * params[1]!;
      adam.apply(params, grad);
    }
    assert.ok(Math.abs(params[0]!) < 1e-2 && Math.abs(params[1]!) < 1e-2);
    const g = Float64Array.from([3, 4]);
    assert.equal(clipGradNorm(g, 1), 5);
    assert.ok(Math.abs(Math.hypot(g[0]!, g[1]!) - 1) < 1e-12);
  });

  void it("rejects parameter vectors of the wrong size", () => {
    assert.throws(() => new Mlp([2, 3, 1], [1, 2, 3]), /expected 13 parameters/);
  });
});
