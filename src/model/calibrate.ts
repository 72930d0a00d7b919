import { loadCatalog, type Catalog } from "./catalog.ts";
import { median, rowShape, type Phase, type ProfileRow } from "./profile.ts";
import {
  DEFAULT_ROOFLINE_PARAMS,
  RooflinePerformanceModel,
  timeFromTerms,
  type PhaseEfficiency,
  type RooflineParams,
  type RooflineTerms,
} from "./roofline.ts";

/**
 * Fits the roofline's efficiency factors (compute, memory, overhead; per phase) to measured iteration
 * times by least squares on the log of the time ratio, so a 2x overestimate weighs as much as a 2x
 * underestimate and short iterations count as much as long ones.
 */

/** One measured point (repeats merged by their median). */
export interface MeasuredPoint {
  readonly model: string;
  readonly gpu: string;
  readonly tp: number;
  readonly phase: Phase;
  readonly batch: number;
  readonly tokens: number;
  readonly seconds: number;
}

/** Merges repeated rows into one point per (model, GPU, TP, phase, batch, tokens), in first-seen order. */
export function measuredPoints(rows: readonly ProfileRow[]): MeasuredPoint[] {
  const groups = new Map<string, { row: ProfileRow; ms: number[] }>();
  for (const row of rows) {
    const key = `${row.model}|${row.gpu}|${row.tp}|${row.phase}|${row.batch}|${row.tokens}`;
    let group = groups.get(key);
    if (group === undefined) groups.set(key, (group = { row, ms: [] }));
    group.ms.push(row.ms);
  }
  return [...groups.values()].map(({ row, ms }) => ({
    model: row.model,
    gpu: row.gpu,
    tp: row.tp,
    phase: row.phase,
    batch: row.batch,
    tokens: row.tokens,
    seconds: median(ms) / 1000,
  }));
}

/** Relative errors |predicted - measured| / measured: median, worst and mean. */
export interface ErrorStats {
  readonly count: number;
  readonly median: number;
  readonly worst: number;
  readonly mean: number;
}

export function errorStats(predicted: readonly number[], measured: readonly number[]): ErrorStats {
  const errors = predicted.map((p, i) => Math.abs(p - measured[i]!) / measured[i]!);
  return {
    count: errors.length,
    median: errors.length === 0 ? NaN : median(errors),
    worst: errors.reduce((a, b) => Math.max(a, b), errors.length === 0 ? NaN : 0),
    mean: errors.reduce((a, b) => a + b, 0) / errors.length,
  };
}

// ---- Nelder-Mead ----------------------------------------------------------------------------------

export interface MinimizeResult {
  readonly x: number[];
  readonly value: number;
  readonly evaluations: number;
}

/**
 * Nelder-Mead simplex minimisation (reflection 1, expansion 2, contraction 1/2, shrink 1/2), started
 * from `x0` with an axis-aligned simplex of size `step`. Deterministic; stops when the simplex's values
 * agree to `tolerance` or after `maxEvaluations`.
 */
export function nelderMead(
  f: (x: readonly number[]) => number,
  x0: readonly number[],
  options: { step?: number; maxEvaluations?: number; tolerance?: number } = {},
): MinimizeResult {
  const { step = 0.5, maxEvaluations = 4000, tolerance = 1e-12 } = options;
  const n = x0.length;
  let evaluations = 0;
  const evaluate = (x: number[]): { x: number[]; value: number } => {
    evaluations++;
    const value = f(x);
    return { x, value: Number.isFinite(value) ? value : Infinity };
  };
  const simplex = [evaluate([...x0])];
  for (let i = 0; i < n; i++) {
    const x = [...x0];
    x[i]! += step;
    simplex.push(evaluate(x));
  }
  const along = (from: number[], to: number[], t: number): number[] =>
    from.map((v, i) => v + t * (to[i]! - v));
  while (evaluations < maxEvaluations) {
    simplex.sort((a, b) => a.value - b.value);
    const best = simplex[0]!;
    const worst = simplex[n]!;
    if (Math.abs(worst.value - best.value) <= tolerance * (Math.abs(best.value) + tolerance)) break;
    const centroid = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) centroid[j]! += simplex[i]!.x[j]! / n;
    const reflected = evaluate(along(worst.x, centroid, 2));
    if (reflected.value < best.value) {
      const expanded = evaluate(along(worst.x, centroid, 3));
      simplex[n] = expanded.value < reflected.value ? expanded : reflected;
    } else if (reflected.value < simplex[n - 1]!.value) {
      simplex[n] = reflected;
    } else {
      const outside = reflected.value < worst.value;
      const contracted = evaluate(along(worst.x, centroid, outside ? 1.5 : 0.5));
      if (contracted.value < (outside ? reflected.value : worst.value)) {
        simplex[n] = contracted;
      } else {
        for (let i = 1; i <= n; i++) simplex[i] = evaluate(along(best.x, simplex[i]!.x, 0.5));
      }
    }
  }
  simplex.sort((a, b) => a.value - b.value);
  return { x: simplex[0]!.x, value: simplex[0]!.value, evaluations };
}

// ---- calibration ----------------------------------------------------------------------------------

export interface PhaseFit {
  readonly phase: Phase;
  readonly points: number;
  readonly before: ErrorStats;
  readonly after: ErrorStats;
  readonly efficiencyBefore: PhaseEfficiency;
  readonly efficiency: PhaseEfficiency;
  /** Mean squared log error before and after. */
  readonly lossBefore: number;
  readonly lossAfter: number;
}

export interface CalibrationResult {
  /** The base parameters with the fitted phases (and collective latency, if fitted) replaced. */
  readonly params: RooflineParams;
  readonly prefill?: PhaseFit;
  readonly decode?: PhaseFit;
  /** Whether collective_latency_s was fitted (needs measurements at two or more TP degrees). */
  readonly fittedCollectiveLatency: boolean;
}

export interface CalibrationOptions {
  /** Starting point and the parameters not fitted (interconnect, collective latency). */
  readonly base?: RooflineParams;
  readonly catalog?: Catalog;
  /**
   * Weight of a pull toward `base` (in the fit's logit/log coordinates): keeps factors the points
   * cannot identify (e.g. memory efficiency when every point is compute-bound) at their base value.
   */
  readonly regularization?: number;
  /**
   * Also fit collective_latency_s, shared by both phases. Only measurements at several tensor-parallel
   * degrees separate it from the fixed overhead; default: when the rows have two or more TP degrees.
   */
  readonly fitCollectiveLatency?: boolean;
}

const MIN_OVERHEAD_S = 1e-7;
const logit = (p: number): number => Math.log(p / (1 - p));
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
// Efficiencies live in (0, 1): fitted as logits, clipped just below 1 so the logit stays finite.
const toCoordinates = (e: PhaseEfficiency): number[] => [
  logit(Math.min(e.compute, 0.999)),
  logit(Math.min(e.memory, 0.999)),
  Math.log(Math.max(e.overhead_s, MIN_OVERHEAD_S)),
];
const fromCoordinates = (x: readonly number[]): PhaseEfficiency => ({
  compute: sigmoid(x[0]!),
  memory: sigmoid(x[1]!),
  overhead_s: Math.exp(x[2]!),
});

/** Roofline terms of each point (computed once; the fit only rescales them). */
function pointTerms(
  points: readonly MeasuredPoint[],
  base: RooflineParams,
  catalog: Catalog,
): RooflineTerms[] {
  const roofline = new RooflinePerformanceModel(base, catalog);
  return points.map((p) =>
    roofline.forInstance(p.model, p.gpu, p.tp).terms(rowShape(p.phase, p.batch, p.tokens)),
  );
}

function withPhase(params: RooflineParams, phase: Phase, efficiency: PhaseEfficiency): RooflineParams {
  return phase === "prefill" ? { ...params, prefill: efficiency } : { ...params, decode: efficiency };
}

function fitPhase(
  phase: Phase,
  points: readonly MeasuredPoint[],
  terms: readonly RooflineTerms[],
  base: RooflineParams,
  regularization: number,
): PhaseFit {
  const logMeasured = points.map((p) => Math.log(p.seconds));
  const baseX = toCoordinates(base[phase]);
  const loss = (efficiency: PhaseEfficiency): number => {
    const params = withPhase(base, phase, efficiency);
    let sum = 0;
    for (let i = 0; i < terms.length; i++) {
      const r = Math.log(timeFromTerms(terms[i]!, params)) - logMeasured[i]!;
      sum += r * r;
    }
    return sum / terms.length;
  };
  const objective = (x: readonly number[]): number => {
    let penalty = 0;
    for (let i = 0; i < 3; i++) penalty += (x[i]! - baseX[i]!) ** 2;
    return loss(fromCoordinates(x)) + regularization * penalty;
  };
  // A coarse grid finds the basin (the max() in the roofline makes the surface kinked); the simplex
  // refines the best few grid points and the base.
  const levels = [0.03, 0.06, 0.12, 0.25, 0.5, 0.9];
  const overheads = [1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2];
  const starts: { x: number[]; value: number }[] = [];
  for (const compute of levels)
    for (const memory of levels)
      for (const overhead_s of overheads) {
        const x = toCoordinates({ compute, memory, overhead_s });
        starts.push({ x, value: objective(x) });
      }
  starts.sort((a, b) => a.value - b.value);
  let best = nelderMead(objective, baseX);
  for (const start of starts.slice(0, 4)) {
    const result = nelderMead(objective, start.x);
    if (result.value < best.value) best = result;
  }
  const efficiency = fromCoordinates(best.x);
  const measured = points.map((p) => p.seconds);
  const predict = (params: RooflineParams): number[] => terms.map((t) => timeFromTerms(t, params));
  return {
    phase,
    points: points.length,
    before: errorStats(predict(base), measured),
    after: errorStats(predict(withPhase(base, phase, efficiency)), measured),
    efficiencyBefore: base[phase],
    efficiency,
    lossBefore: loss(base[phase]),
    lossAfter: loss(efficiency),
  };
}

/**
 * Fits prefill and decode efficiencies (each over all the rows of that phase, any model/GPU/TP) and,
 * when asked or when the rows span several TP degrees, the collective latency they share: an outer
 * one-dimensional search over log(latency) around the two per-phase fits.
 */
export function calibrateRoofline(
  rows: readonly ProfileRow[],
  options: CalibrationOptions = {},
): CalibrationResult {
  const base = options.base ?? DEFAULT_ROOFLINE_PARAMS;
  const catalog = options.catalog ?? loadCatalog();
  const regularization = options.regularization ?? 1e-4;
  const points = measuredPoints(rows);
  const fitLatency = options.fitCollectiveLatency ?? new Set(points.map((p) => p.tp)).size >= 2;
  const phases = (["prefill", "decode"] as const)
    .map((phase) => {
      const phasePoints = points.filter((p) => p.phase === phase);
      return { phase, points: phasePoints, terms: pointTerms(phasePoints, base, catalog) };
    })
    .filter((group) => group.points.length > 0);

  const fitAll = (latency: number): { params: RooflineParams; fits: PhaseFit[]; loss: number } => {
    let params: RooflineParams = { ...base, collective_latency_s: latency };
    const fits: PhaseFit[] = [];
    let loss = 0;
    for (const group of phases) {
      const fit = fitPhase(group.phase, group.points, group.terms, params, regularization);
      fits.push(fit);
      loss += fit.lossAfter * group.points.length;
      params = withPhase(params, group.phase, fit.efficiency);
    }
    return { params, fits, loss };
  };

  let best = fitAll(base.collective_latency_s);
  if (fitLatency) {
    const byLog = (logLatency: number): number => fitAll(Math.exp(logLatency)).loss;
    const grid = [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3].map(Math.log);
    const start = grid.reduce((a, b) => (byLog(b) < byLog(a) ? b : a));
    const refined = nelderMead((x) => byLog(x[0]!), [start], {
      step: 0.5,
      maxEvaluations: 60,
      tolerance: 1e-9,
    });
    const candidate = fitAll(Math.exp(refined.x[0]!));
    if (candidate.loss < best.loss) best = candidate;
  }
  // "before" is always measured against the base parameters, whatever latency the fit chose.
  const fits = best.fits.map((fit, i) => {
    const group = phases[i]!;
    const measured = group.points.map((p) => p.seconds);
    const before = errorStats(
      group.terms.map((t) => timeFromTerms(t, base)),
      measured,
    );
    return { ...fit, before, lossBefore: meanSquaredLogError(group.terms, measured, base) };
  });
  return {
    params: best.params,
    ...Object.fromEntries(fits.map((fit) => [fit.phase, fit])),
    fittedCollectiveLatency: fitLatency,
  };
}

function meanSquaredLogError(
  terms: readonly RooflineTerms[],
  measured: readonly number[],
  params: RooflineParams,
): number {
  let sum = 0;
  for (let i = 0; i < terms.length; i++) {
    const r = Math.log(timeFromTerms(terms[i]!, params) / measured[i]!);
    sum += r * r;
  }
  return sum / terms.length;
}
