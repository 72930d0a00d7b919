import { existsSync } from "node:fs";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { TimelineRow } from "../metrics/timeline.ts";

/**
 * Charts are vega-lite specs (one description for the static SVG/PNG files and any dashboard),
 * rendered to SVG with vega in Node and rasterized to PNG with resvg. No browser, no network.
 */

export interface ReplicaPoint {
  readonly policy: string;
  readonly time_s: number;
  readonly pool: string;
  readonly replicas: number;
  /** Requests per second arriving at the front door over the last interval. */
  readonly arrival_rate: number;
}

/** Thins a long series to about `target` points per (policy, pool), keeping each bucket's maximum. */
export function downsample(points: readonly ReplicaPoint[], target = 400): ReplicaPoint[] {
  const groups = new Map<string, ReplicaPoint[]>();
  for (const point of points) {
    const key = `${point.policy}\u0000${point.pool}`;
    let group = groups.get(key);
    if (group === undefined) groups.set(key, (group = []));
    group.push(point);
  }
  const out: ReplicaPoint[] = [];
  for (const group of groups.values()) {
    const step = Math.max(1, Math.ceil(group.length / target));
    for (let i = 0; i < group.length; i += step) {
      const bucket = group.slice(i, i + step);
      const peak = bucket.reduce(
        (best, point) => (point.replicas > best.replicas ? point : best),
        bucket[0]!,
      );
      const meanRate = bucket.reduce((sum, point) => sum + point.arrival_rate, 0) / bucket.length;
      out.push({ ...peak, time_s: bucket[0]!.time_s, arrival_rate: meanRate });
    }
  }
  return out;
}

/** Replicas per pool (step lines) over the arrival rate (grey area), one row per policy. */
export function replicasChartSpec(points: readonly ReplicaPoint[], title: string): TopLevelSpec {
  const data = downsample(points).map((point) => ({ ...point, minutes: point.time_s / 60 }));
  const policies = [...new Set(data.map((point) => point.policy))];
  const maxReplicas = Math.max(1, ...data.map((point) => point.replicas));
  // One layered chart per policy (vega-lite cannot facet a layer with independent y scales).
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    data: { values: data },
    vconcat: policies.map((policy) => ({
      title: { text: policy, anchor: "start", fontSize: 12 },
      width: 640,
      height: 110,
      transform: [{ filter: { field: "policy", equal: policy } }],
      layer: [
        {
          mark: { type: "area", color: "#d9d9d9", interpolate: "step-after" },
          encoding: {
            x: { field: "minutes", type: "quantitative", title: "time (min)" },
            y: {
              aggregate: "mean",
              field: "arrival_rate",
              type: "quantitative",
              title: "arrivals/s",
              axis: { orient: "right", titleColor: "#888" },
            },
          },
        },
        {
          mark: { type: "line", interpolate: "step-after", strokeWidth: 1.6 },
          encoding: {
            x: { field: "minutes", type: "quantitative" },
            y: {
              field: "replicas",
              type: "quantitative",
              title: "replicas",
              scale: { domain: [0, maxReplicas] },
            },
            color: { field: "pool", type: "nominal", title: "pool" },
          },
        },
      ],
      resolve: { scale: { y: "independent" } },
    })),
  };
}

/** One point of a line in a stacked time chart. */
interface SeriesPoint {
  readonly minutes: number;
  readonly series: string;
  readonly value: number;
}

interface LinePanel {
  readonly title: string;
  readonly points: readonly SeriesPoint[];
  /** Legend entries in order (fixes the colours). */
  readonly series: readonly string[];
  readonly step?: boolean;
}

/** Panels of lines stacked on a shared time axis, each with its own y scale and legend. */
function stackedLinesSpec(panels: readonly LinePanel[], title: string): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    vconcat: panels.map((panel, panelIndex) => ({
      width: 640,
      height: 90,
      data: { values: [...panel.points] },
      mark: {
        type: "line",
        strokeWidth: 1.6,
        ...(panel.step === true ? { interpolate: "step-after" as const } : {}),
      },
      encoding: {
        x: {
          field: "minutes",
          type: "quantitative",
          title: panelIndex === panels.length - 1 ? "time (min)" : null,
        },
        y: { field: "value", type: "quantitative", title: panel.title, scale: { zero: false } },
        color: {
          field: "series",
          type: "nominal",
          title: null,
          scale: { domain: [...panel.series] },
          legend: { orient: "right" },
        },
      },
    })),
    resolve: { scale: { color: "independent" } },
  };
}

/**
 * Points of one timeline column (times `scale`) under a series name. NaN (an interval without
 * requests) is left out, which breaks the line there.
 */
function columnPoints(
  rows: readonly TimelineRow[],
  field: keyof TimelineRow,
  series: string,
  scale = 1,
): SeriesPoint[] {
  return rows.flatMap((row) => {
    const value = row[field] * scale;
    return Number.isFinite(value) ? [{ minutes: row.start_s / 60, series, value }] : [];
  });
}

/**
 * A run over time (timeline.csv): load and throughput, TTFT p50/p99, SLO attainment and GPUs, one
 * panel each on a shared time axis.
 */
export function timelineChartSpec(rows: readonly TimelineRow[], title: string): TopLevelSpec {
  return stackedLinesSpec(
    [
      {
        title: "requests/s",
        series: ["arrivals", "completions"],
        points: [
          ...columnPoints(rows, "arrival_rate", "arrivals"),
          ...columnPoints(rows, "throughput", "completions"),
        ],
      },
      {
        title: "TTFT (s)",
        series: ["p50", "p99"],
        points: [...columnPoints(rows, "ttft_p50_s", "p50"), ...columnPoints(rows, "ttft_p99_s", "p99")],
      },
      {
        title: "SLO attainment (%)",
        series: ["attainment"],
        points: columnPoints(rows, "slo_attainment", "attainment", 100),
      },
      { title: "GPUs allocated", series: ["GPUs"], points: columnPoints(rows, "gpus", "GPUs"), step: true },
    ],
    title,
  );
}

/** Several runs over time, one line per run: TTFT p99, SLO attainment and GPUs (compare's timeline chart). */
export function timelineComparisonChartSpec(
  runs: readonly { readonly name: string; readonly timeline: readonly TimelineRow[] }[],
  title: string,
): TopLevelSpec {
  const names = runs.map((run) => run.name);
  const panel = (panelTitle: string, field: keyof TimelineRow, scale = 1, step = false): LinePanel => ({
    title: panelTitle,
    series: names,
    points: runs.flatMap((run) => columnPoints(run.timeline, field, run.name, scale)),
    step,
  });
  return stackedLinesSpec(
    [
      panel("TTFT p99 (s)", "ttft_p99_s"),
      panel("SLO attainment (%)", "slo_attainment", 100),
      panel("GPUs allocated", "gpus", 1, true),
    ],
    title,
  );
}

/** One run of a sweep, as its chart reads it. */
export interface SweepChartPoint {
  /** The first varied key's value. */
  readonly x: number | string;
  /** The other varied keys' values (one line each); "" with a single varied key. */
  readonly group: string;
  readonly slo_attainment: number;
  readonly ttft_p99_s: number;
  readonly tbt_p99_s: number;
  readonly gpu_hours: number | null;
}

/** Metrics against the first varied key, one line per combination of the others. */
export function sweepChartSpec(
  points: readonly SweepChartPoint[],
  xTitle: string,
  groupTitle: string,
  title: string,
): TopLevelSpec {
  const numericX = points.every((point) => typeof point.x === "number");
  const integerX = points.every((point) => Number.isInteger(point.x));
  const panels: { title: string; value: (point: SweepChartPoint) => number | null; log?: boolean }[] = [
    { title: "SLO attainment (%)", value: (point) => point.slo_attainment * 100 },
    // Log scale: past capacity TTFT grows by orders of magnitude (queueing), which would flatten
    // the interesting part near the SLO.
    { title: "TTFT p99 (s)", value: (point) => point.ttft_p99_s, log: true },
    { title: "TBT p99 (s)", value: (point) => point.tbt_p99_s },
    { title: "GPU-hours", value: (point) => point.gpu_hours },
  ];
  const grouped = points.some((point) => point.group !== "");
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    vconcat: panels.map((panel, panelIndex) => ({
      width: 480,
      height: 110,
      data: {
        values: points.flatMap((point) => {
          const value = panel.value(point);
          const drawable = value !== null && Number.isFinite(value) && (panel.log !== true || value > 0);
          return drawable ? [{ x: point.x, group: point.group, value }] : [];
        }),
      },
      mark: { type: "line", point: true, strokeWidth: 1.6 },
      encoding: {
        x: {
          field: "x",
          type: numericX ? "quantitative" : "ordinal",
          title: panelIndex === panels.length - 1 ? xTitle : null,
          ...(numericX ? { scale: { zero: false } } : { sort: null }),
          ...(integerX ? { axis: { tickMinStep: 1 } } : {}),
        },
        y: {
          field: "value",
          type: "quantitative",
          title: panel.title,
          scale: panel.log === true ? { type: "log" } : { zero: false },
        },
        ...(grouped
          ? {
              color: {
                field: "group",
                type: "nominal" as const,
                title: groupTitle === "" ? null : groupTitle,
                sort: null,
                legend: { titleLimit: 400, labelLimit: 400 },
              },
            }
          : {}),
      },
    })),
  };
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const FONT_FILES = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"];

/** PNG of an SVG at 2x scale on a white background (system fonts; DejaVu Sans when installed). */
export function svgToPng(svg: string): Buffer {
  const fontFiles = FONT_FILES.filter((file) => existsSync(file));
  const resvg = new Resvg(svg, {
    background: "white",
    fitTo: { mode: "zoom", value: 2 },
    font: { loadSystemFonts: true, fontFiles, defaultFontFamily: "DejaVu Sans" },
  });
  return resvg.render().asPng();
}
