import { parse } from "yaml";
import { UsageError } from "../errors.ts";

/**
 * Parameter sweeps: the same config run over a grid of overridden keys (every combination), e.g. the
 * arrival rate a fleet can carry within its SLO, or the fleet size a load needs.
 */

/** One `--vary KEY=VALUES` flag: a config key and the values it takes. */
export interface SweepAxis {
  readonly key: string;
  /** The values as written (each applied like `--set KEY=VALUE`, so YAML scalars). */
  readonly values: readonly string[];
}

/** One point of the grid: a value per axis, in axis order. */
export interface SweepPoint {
  readonly values: readonly string[];
  /** `key=value` overrides for `--set`. */
  readonly overrides: readonly string[];
  /** A readable name: `rate_per_s=4,count=6` (last key segment). */
  readonly label: string;
}

/** Grids larger than this are refused: a typo like 1:1000:0.1 should not start 10,000 runs. */
export const MAX_SWEEP_POINTS = 1000;

const NUMBER = String.raw`[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?`;
const RANGE = new RegExp(`^(${NUMBER}):(${NUMBER}):(${NUMBER})$`);

/**
 * Parses `KEY=V1,V2,...` or `KEY=START:STOP:STEP` (inclusive of STOP when it falls on a step). Values
 * cannot contain commas.
 */
export function parseSweepAxis(text: string): SweepAxis {
  const equals = text.indexOf("=");
  if (equals <= 0 || equals === text.length - 1)
    throw new UsageError(`--vary expects KEY=V1,V2,... or KEY=START:STOP:STEP, got "${text}"`);
  const key = text.slice(0, equals);
  const spec = text.slice(equals + 1);
  const range = RANGE.exec(spec);
  if (range !== null) {
    const [start, stop, step] = [Number(range[1]), Number(range[2]), Number(range[3])];
    if (!(step > 0) || stop < start)
      throw new UsageError(`--vary ${text}: a range START:STOP:STEP needs STEP > 0 and STOP >= START`);
    const count = Math.floor((stop - start) / step + 1e-9) + 1;
    if (count > MAX_SWEEP_POINTS)
      throw new UsageError(`--vary ${text}: ${count} values, more than ${MAX_SWEEP_POINTS}`);
    // Rounded to 12 significant digits so 0.1 steps print as 0.3, not 0.30000000000000004.
    const values = Array.from({ length: count }, (_, i) =>
      String(Number((start + i * step).toPrecision(12))),
    );
    return { key, values };
  }
  const values = spec.split(",").map((value) => value.trim());
  if (values.some((value) => value === ""))
    throw new UsageError(`--vary ${text}: an empty value (values are separated by commas)`);
  if (new Set(values).size !== values.length) throw new UsageError(`--vary ${text}: a value is listed twice`);
  return { key, values };
}

/** Every combination of the axes' values, the first axis varying slowest. */
export function sweepPoints(axes: readonly SweepAxis[]): SweepPoint[] {
  if (axes.length === 0) throw new UsageError("--vary: give at least one KEY=VALUES");
  const keys = axes.map((axis) => axis.key);
  if (new Set(keys).size !== keys.length) throw new UsageError("--vary: a key is varied twice");
  const total = axes.reduce((product, axis) => product * axis.values.length, 1);
  if (total > MAX_SWEEP_POINTS)
    throw new UsageError(`--vary: ${total} combinations, more than ${MAX_SWEEP_POINTS}`);
  let combinations: string[][] = [[]];
  for (const axis of axes)
    combinations = combinations.flatMap((prefix) => axis.values.map((value) => [...prefix, value]));
  const shortKeys = shortNames(keys);
  return combinations.map((values) => ({
    values,
    overrides: values.map((value, index) => `${keys[index]!}=${value}`),
    label: values.map((value, index) => `${shortKeys[index]!}=${value}`).join(","),
  }));
}

/** The last segment of each key, or more segments where two keys would read the same. */
function shortNames(keys: readonly string[]): string[] {
  return keys.map((key) => {
    const parts = key.split(".");
    for (let take = 1; take <= parts.length; take++) {
      const name = parts.slice(-take).join(".");
      const clash = keys.some((other) => other !== key && other.split(".").slice(-take).join(".") === name);
      if (!clash) return name;
    }
    return key;
  });
}

/**
 * A value as its config key receives it (`--set` parses values as YAML): `4` is a number, `true` a
 * boolean, `token_jsq` a string. sweep.json stores values this way so they load as typed columns.
 */
export function typedValue(text: string): unknown {
  try {
    const value: unknown = parse(text);
    return typeof value === "number" || typeof value === "boolean" || typeof value === "string"
      ? value
      : text;
  } catch {
    return text;
  }
}
