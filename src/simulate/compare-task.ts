import type { ReplicaPoint } from "../report/charts.ts";
import type { CompareTaskInput, CompareTaskOutput } from "./compare.ts";
import { runSimulation } from "./run.ts";

/** One comparison run inside a worker thread: simulate, write the run directory, return the row. */
export default function compareTask(input: CompareTaskInput): CompareTaskOutput {
  const result = runSimulation(
    { config: input.config, baseDir: input.baseDir, source: input.source },
    { outDir: input.outDir },
  );
  // The load curve under each chart row: the run's arrival rate per timeline interval.
  const timeline = result.timeline ?? [];
  const interval = input.config.metrics.timeline_interval_s;
  const firstRow = timeline.length === 0 ? 0 : Math.round(timeline[0]!.start_s / interval);
  const arrivalRateAt = (time_s: number): number =>
    timeline[Math.floor(time_s / interval) - firstRow]?.arrival_rate ?? 0;
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
        arrival_rate: arrivalRateAt(sample.time_s),
      });
    }
  } else {
    // A fixed fleet: its size, and the arrival rate every minute.
    const counts = new Map<string, number>();
    for (const instance of result.outcome.instances) {
      const pool = instance.tag === "prompt" ? "prefill" : instance.tag === "token" ? "decode" : "mixed";
      counts.set(pool, (counts.get(pool) ?? 0) + 1);
    }
    const end = summary.sim_end_s ?? 0;
    for (const [pool, replicas] of counts) {
      for (let t = 0; t <= end; t += 60) {
        points.push({ policy: input.label, time_s: t, pool, replicas, arrival_rate: arrivalRateAt(t) });
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
    timeline,
  };
}
