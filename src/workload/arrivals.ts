import { UsageError } from "../errors.ts";
import type { Rng } from "../core/rng.ts";
import type { RateStep } from "./spec.ts";

/** A point process on [0, ∞). */
export interface ArrivalProcess {
  readonly description: string;
  /** The next arrival time in seconds (non-decreasing), or Infinity once the process has ended. */
  next(): number;
}

/** Homogeneous Poisson process. */
export class PoissonArrivals implements ArrivalProcess {
  readonly description: string;
  private time_s = 0;

  constructor(
    private readonly rate_per_s: number,
    private readonly rng: Rng,
  ) {
    checkPositive("rate_per_s", rate_per_s);
    this.description = `poisson(rate=${rate_per_s}/s)`;
  }

  next(): number {
    this.time_s += this.rng.exponential(this.rate_per_s);
    return this.time_s;
  }
}

/** Renewal process with Gamma gaps: shape = 1/cv², scale = 1/(rate·shape), so the mean rate is kept and cv 1 is Poisson. */
export class GammaArrivals implements ArrivalProcess {
  readonly description: string;
  private readonly shape: number;
  private readonly scale: number;
  private time_s = 0;

  constructor(
    rate_per_s: number,
    cv: number,
    private readonly rng: Rng,
  ) {
    checkPositive("rate_per_s", rate_per_s);
    checkPositive("cv", cv);
    this.shape = 1 / (cv * cv);
    this.scale = 1 / (rate_per_s * this.shape);
    this.description = `gamma(rate=${rate_per_s}/s, cv=${cv})`;
  }

  next(): number {
    this.time_s += this.rng.gamma(this.shape, this.scale);
    return this.time_s;
  }
}

/**
 * Poisson with rate(t) = mean · (1 + amplitude · sin(2π t / period + phase)), by Lewis–Shedler
 * thinning: candidates come at the peak rate and each is kept with probability rate(t) / peak, which
 * is exact for any bounded rate, unlike stepping the rate per interval.
 */
export class DiurnalArrivals implements ArrivalProcess {
  readonly description: string;
  private readonly peakRate_per_s: number;
  private readonly angularFrequency: number;
  private time_s = 0;

  constructor(
    private readonly meanRate_per_s: number,
    private readonly amplitude: number,
    period_s: number,
    private readonly phase: number,
    private readonly rng: Rng,
  ) {
    checkPositive("mean_rate_per_s", meanRate_per_s);
    checkPositive("period_s", period_s);
    if (!(amplitude >= 0 && amplitude <= 1)) {
      throw new UsageError(
        `diurnal amplitude must be in [0, 1] so the rate stays non-negative, got ${amplitude}`,
      );
    }
    if (!Number.isFinite(phase))
      throw new UsageError(`diurnal phase must be a finite number of radians, got ${phase}`);
    this.peakRate_per_s = meanRate_per_s * (1 + amplitude);
    this.angularFrequency = (2 * Math.PI) / period_s;
    this.description = `diurnal(mean=${meanRate_per_s}/s, amplitude=${amplitude}, period=${period_s}s)`;
  }

  rateAt(time_s: number): number {
    return this.meanRate_per_s * (1 + this.amplitude * Math.sin(this.angularFrequency * time_s + this.phase));
  }

  next(): number {
    for (;;) {
      this.time_s += this.rng.exponential(this.peakRate_per_s);
      if (this.rng.nextFloat() * this.peakRate_per_s < this.rateAt(this.time_s)) return this.time_s;
    }
  }
}

/**
 * Poisson with a piecewise-constant rate. This is thinning with the bound set to each step's own
 * rate, so every candidate is kept: a gap drawn at a step's rate that crosses the step's end is
 * discarded and drawn afresh from the boundary at the next rate, which is exact because the
 * exponential is memoryless. The process ends after the last step.
 */
export class StepArrivals implements ArrivalProcess {
  readonly description: string;
  private step = 0;
  private time_s = 0;

  constructor(
    private readonly steps: readonly RateStep[],
    private readonly rng: Rng,
  ) {
    if (steps.length === 0)
      throw new UsageError("steps arrival process needs at least one {until_s, rate_per_s} step");
    let previousEnd = 0;
    for (const [index, { until_s, rate_per_s }] of steps.entries()) {
      if (!Number.isFinite(until_s) || until_s <= previousEnd) {
        throw new UsageError(
          `steps[${index}].until_s must be finite and greater than ${previousEnd}, got ${until_s}`,
        );
      }
      if (!Number.isFinite(rate_per_s) || rate_per_s < 0) {
        throw new UsageError(`steps[${index}].rate_per_s must be a non-negative number, got ${rate_per_s}`);
      }
      previousEnd = until_s;
    }
    this.description = `steps(${steps.map((step) => `${step.rate_per_s}/s until ${step.until_s}s`).join(", ")})`;
  }

  next(): number {
    while (this.step < this.steps.length) {
      const { until_s, rate_per_s } = this.steps[this.step]!;
      if (rate_per_s > 0) {
        const candidate = this.time_s + this.rng.exponential(rate_per_s);
        if (candidate < until_s) {
          this.time_s = candidate;
          return candidate;
        }
      }
      this.time_s = until_s;
      this.step++;
    }
    return Number.POSITIVE_INFINITY;
  }
}

function checkPositive(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0)
    throw new UsageError(`${name} must be a positive number, got ${value}`);
}
