import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  chiSquareUpperTail,
  logGamma,
  normalQuantile,
  studentTQuantile,
  upperPredictionBound,
} from "../../src/policy/primitives/statistics.ts";

const close = (actual: number, expected: number, relative: number): void =>
  assert.ok(
    Math.abs(actual - expected) <= relative * Math.abs(expected),
    `${actual} not within ${relative * 100} % of ${expected}`,
  );

void describe("statistics primitives", () => {
  void it("normal quantiles match the tables", () => {
    close(normalQuantile(0.975), 1.959964, 1e-6);
    close(normalQuantile(0.99), 2.326348, 1e-6);
    close(normalQuantile(0.001), -3.090232, 1e-6);
    assert.equal(normalQuantile(0.5), 0);
    assert.throws(() => normalQuantile(1), RangeError);
  });

  void it("Student-t quantiles match the tables, exactly for 1 and 2 degrees of freedom", () => {
    close(studentTQuantile(0.99, 1), 31.82052, 1e-6);
    close(studentTQuantile(0.99, 2), 6.964557, 1e-6);
    close(studentTQuantile(0.99, 3), 4.540703, 0.01);
    close(studentTQuantile(0.99, 9), 2.821438, 0.002);
    close(studentTQuantile(0.95, 20), 1.724718, 0.001);
    close(studentTQuantile(0.999, 3), 10.21453, 0.03);
    assert.ok(studentTQuantile(0.99, 1000) < studentTQuantile(0.99, 10));
  });

  void it("the prediction bound widens with few draws and sits above the mean", () => {
    assert.equal(upperPredictionBound([], 0.99), 0);
    assert.equal(upperPredictionBound([7], 0.99), 7);
    assert.equal(upperPredictionBound([5, 5, 5], 0.99), 5);
    const few = upperPredictionBound([0, 10], 0.99);
    const many = upperPredictionBound([0, 10, 0, 10, 0, 10, 0, 10, 0, 10], 0.99);
    // mean 5, s = 7.07: 5 + 31.8 · 7.07 · √1.5 for two draws; 5 + 2.82 · 5.27 · √1.1 for ten.
    close(few, 5 + 31.82052 * Math.sqrt(50) * Math.sqrt(1.5), 1e-6);
    assert.ok(many > 10 && many < few, `${many} vs ${few}`);
  });

  void it("log-gamma and the χ² tail match known values far into the tail", () => {
    close(logGamma(0.5), Math.log(Math.sqrt(Math.PI)), 1e-12);
    close(logGamma(10), Math.log(362_880), 1e-12);
    close(chiSquareUpperTail(3.841459, 1), 0.05, 1e-5);
    close(chiSquareUpperTail(29, 29), 0.4650662, 1e-6);
    close(chiSquareUpperTail(150, 29), 2.900479e-18, 1e-5);
    close(chiSquareUpperTail(1000, 29), 8.654641e-192, 1e-5);
    assert.equal(chiSquareUpperTail(0, 5), 1);
  });
});
