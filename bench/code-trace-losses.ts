// Where azure-code-autoscale's SLO misses fall, and what fleets chosen with hindsight reach: the
// figures of docs/results.md's "Why code stays expensive".
//   node --import tsx bench/code-trace-losses.ts [--json]
// Runs the preset under its own policy (sla) and under scripted schedules (a Policy that sets each
// pool's target from the clock alone), and counts the requests that miss the per-request SLO by when
// they arrived: the first burst (t < 40 s), the largest burst (850-900 s) and the rest.
import { parseArgs } from "node:util";
import { loadConfigFile, type LoadedConfig } from "../src/config/config.ts";
import { presetPath } from "../src/config/presets.ts";
import type { Decision, Policy } from "../src/policy/types.ts";
import { formatTable } from "../src/report/table.ts";
import { runSimulation } from "../src/simulate/run.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

interface Step {
  /** From this simulated time on (seconds)... */
  readonly from_s: number;
  /** ...the pools' targets. */
  readonly prefill: number;
  readonly decode: number;
}

interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Undefined: the preset's own policy. */
  readonly schedule?: readonly Step[];
}

const SCENARIOS: readonly Scenario[] = [
  { name: "sla", description: "the preset's policy" },
  {
    name: "max-from-start",
    description: "16 prefill + 2 decode requested at the first decision (t = 2 s)",
    schedule: [{ from_s: 0, prefill: 16, decode: 2 }],
  },
  {
    name: "hindsight",
    description: "12 prefill until minute 10, 16 until minute 25, 12 after; 2 decode",
    schedule: [
      { from_s: 0, prefill: 12, decode: 2 },
      { from_s: 600, prefill: 16, decode: 2 },
      { from_s: 1500, prefill: 12, decode: 2 },
    ],
  },
];

/** Windows of arrival time (seconds) whose misses are counted apart. */
const WINDOWS = [
  { name: "first burst (t < 40 s)", from_s: 0, to_s: 40 },
  { name: "largest burst (850-900 s)", from_s: 850, to_s: 900 },
] as const;

function scheduledPolicy(schedule: readonly Step[]): Policy<null> {
  return {
    name: "schedule",
    interval_s: 2,
    init: () => null,
    decide: (observation) => {
      let step = schedule[0]!;
      for (const candidate of schedule) if (candidate.from_s <= observation.now) step = candidate;
      const decision: Decision = {
        targets: { prefill: { desired: step.prefill }, decode: { desired: step.decode } },
        reasons: [`scripted: ${step.prefill} prefill + ${step.decode} decode from ${step.from_s} s`],
      };
      return { decision, state: null };
    },
  };
}

interface Outcome {
  readonly scenario: string;
  /** null when nothing arrived. */
  readonly attainment: number | null;
  readonly gpu_hours: number | null;
  readonly arrived: number;
  readonly misses: number;
  readonly misses_by_window: Record<string, number>;
  readonly misses_elsewhere: number;
}

function run(loaded: LoadedConfig, scenario: Scenario): Outcome {
  // One-second timeline rows give the misses by arrival time (unfinished requests count as misses).
  const config = { ...loaded.config, metrics: { ...loaded.config.metrics, timeline_interval_s: 1 } };
  const outDir = mkdtempSync(join(tmpdir(), "splitscale-code-losses-"));
  try {
    const result = runSimulation(
      { ...loaded, config },
      {
        outDir,
        ...(scenario.schedule === undefined ? {} : { policy: scheduledPolicy(scenario.schedule) }),
      },
    );
    const rows = result.timeline ?? [];
    const missesBetween = (from: number, to: number): number =>
      rows
        .filter((row) => row.start_s >= from && row.start_s < to && row.arrived > 0)
        .reduce((sum, row) => sum + Math.round(row.arrived * (1 - row.slo_attainment)), 0);
    const total = missesBetween(-Infinity, Infinity);
    const byWindow = Object.fromEntries(WINDOWS.map((w) => [w.name, missesBetween(w.from_s, w.to_s)]));
    const inWindows = Object.values(byWindow).reduce((sum, value) => sum + value, 0);
    return {
      scenario: scenario.name,
      attainment: result.summary.slo.attainment,
      gpu_hours: result.summary.gpu_hours,
      arrived: result.summary.requests.arrived,
      misses: total,
      misses_by_window: byWindow,
      misses_elsewhere: total - inWindows,
    };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({ options: { json: { type: "boolean", default: false } } });
const loaded = loadConfigFile(presetPath("azure-code-autoscale"));
const outcomes = SCENARIOS.map((scenario) => run(loaded, scenario));
if (values.json) {
  process.stdout.write(`${JSON.stringify(outcomes, null, 2)}\n`);
} else {
  const rows = outcomes.map((outcome) => [
    outcome.scenario,
    outcome.attainment === null ? "-" : `${(outcome.attainment * 100).toFixed(2)} %`,
    outcome.gpu_hours === null ? "-" : outcome.gpu_hours.toFixed(1),
    outcome.misses,
    ...WINDOWS.map((w) => outcome.misses_by_window[w.name]!),
    outcome.misses_elsewhere,
  ]);
  process.stdout.write(
    `${formatTable(
      ["run", "SLO attainment", "GPU-h", "misses", ...WINDOWS.map((w) => w.name), "elsewhere"],
      rows,
      {
        align: ["left", "right", "right", "right", "right", "right", "right"],
      },
    )}\n`,
  );
  for (const scenario of SCENARIOS) process.stdout.write(`${scenario.name}: ${scenario.description}\n`);
}
