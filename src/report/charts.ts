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

/** One panel of the timeline chart: some of the timeline's columns as lines over time. */
interface TimelinePanel {
  readonly title: string;
  readonly fields: readonly (keyof TimelineRow)[];
  /** Legend names of the fields, in the same order. */
  readonly names: readonly string[];
  readonly scale?: number;
  readonly step?: boolean;
}

/**
 * A run over time (timeline.csv): load and throughput, TTFT p50/p99, SLO attainment and GPUs, one
 * panel each on a shared time axis.
 */
export function timelineChartSpec(rows: readonly TimelineRow[], title: string): TopLevelSpec {
  const panels: TimelinePanel[] = [
    { title: "requests/s", fields: ["arrival_rate", "throughput"], names: ["arrivals", "completions"] },
    { title: "TTFT (s)", fields: ["ttft_p50_s", "ttft_p99_s"], names: ["p50", "p99"] },
    { title: "SLO attainment (%)", fields: ["slo_attainment"], names: ["attainment"], scale: 100 },
    { title: "GPUs allocated", fields: ["gpus"], names: ["GPUs"], step: true },
  ];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    vconcat: panels.map((panel, panelIndex) => ({
      width: 640,
      height: 90,
      // Long format (one point per row and series) so every panel gets a legend; NaN (an interval
      // without requests) is left out, which breaks the line there.
      data: {
        values: rows.flatMap((row) =>
          panel.fields.flatMap((field, index) => {
            const value = row[field] * (panel.scale ?? 1);
            return Number.isFinite(value)
              ? [{ minutes: row.start_s / 60, series: panel.names[index]!, value }]
              : [];
          }),
        ),
      },
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
          scale: { domain: [...panel.names] },
          legend: { orient: "right" },
        },
      },
    })),
    resolve: { scale: { color: "independent" } },
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
