import type { ReplicaPoint } from "../report/charts.ts";
import type { CompareTaskInput, CompareTaskOutput } from "./compare.ts";
import { runSimulation } from "./run.ts";

/** One comparison run inside a worker thread: simulate, write the run directory, return the row. */
export default function compareTask(input: CompareTaskInput): CompareTaskOutput {
  // Arrivals per minute, for the load curve under a fixed fleet's chart row.
  const arrivalsPerMinute: number[] = [];
  const result = runSimulation(
    { config: input.config, baseDir: input.baseDir, source: input.source },
    {
      outDir: input.outDir,
      onRecord: (record) => {
        const minute = Math.floor(record.arrival_s / 60);
        arrivalsPerMinute[minute] = (arrivalsPerMinute[minute] ?? 0) + 1;
      },
    },
  );
  const { summary } = result;
  const distribution = (d: { mean: number; p50: number; p90: number; p99: number }) => ({
    mean: d.mean,
    p50: d.p50,
    p90: d.p90,
    p99: d.p99,
  });
  const points: ReplicaPoint[] = [];
  if (result.autoscaling !== undefined) {
    for (const sample of result.autoscaling.controller.samples) {
      points.push({
        policy: input.label,
        time_s: sample.time_s,
        pool: sample.pool,
        replicas: sample.desired,
        // Per-minute arrivals for every row, so the load curves of all policies share one scale.
        arrival_rate: (arrivalsPerMinute[Math.floor(sample.time_s / 60)] ?? 0) / 60,
      });
    }
  } else {
    // A fixed fleet: its size at the start and end, and the arrival rate per minute between.
    const counts = new Map<string, number>();
    for (const instance of result.outcome.instances) {
      const pool = instance.tag === "prompt" ? "prefill" : instance.tag === "token" ? "decode" : "mixed";
      counts.set(pool, (counts.get(pool) ?? 0) + 1);
    }
    const end = summary.sim_end_s ?? 0;
    for (const [pool, replicas] of counts) {
      for (let t = 0; t <= end; t += 60) {
        const rate = (arrivalsPerMinute[Math.floor(t / 60)] ?? 0) / 60;
        points.push({ policy: input.label, time_s: t, pool, replicas, arrival_rate: rate });
      }
    }
  }
  return {
    row: {
      name: input.label,
      description: input.description,
      gpu_hours: summary.gpu_hours,
      cost_usd: summary.cost_usd,
      energy_kwh: summary.energy_kwh,
      slo_attainment: summary.slo.attainment,
      meets_splitwise_slo: summary.slo.meets_splitwise_slo,
      ttft_s: distribution(summary.ttft_s),
      tbt_s: distribution(summary.tbt_s),
      e2e_s: distribution(summary.e2e_s),
      scale_events: summary.scaling?.events ?? 0,
      max_replicas: summary.scaling?.max_replicas ?? 0,
      gpu_seconds_by_state: summary.scaling?.gpu_seconds_by_state ?? null,
      requests: { arrived: summary.requests.arrived, completed: summary.requests.completed },
      wall_s: summary.wall_s,
      out_dir: input.outDir,
    },
    points,
  };
}
