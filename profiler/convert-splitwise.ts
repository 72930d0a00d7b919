// Regenerates the profile fixtures in test/model/fixtures from upstream splitwise-sim's measured table
// (data/perf/splitwise_perf_model.csv), the only measured profiles this repository ships:
//   node --import tsx profiler/convert-splitwise.ts
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatProfileCsv, splitwiseTableToProfile } from "../src/model/profile.ts";
import { DEFAULT_PERF_TABLE, PACKAGE_ROOT } from "../src/paths.ts";

/** The fixtures: (model, upstream hardware, TP) -> file, with the catalog GPU name written in the CSV. */
export const SPLITWISE_FIXTURES = [
  {
    model: "llama2-70b",
    hardware: "h100-80gb",
    tp: 8,
    gpu: "h100-sxm-80gb",
    file: "llama2-70b-h100-tp8.csv",
  },
  {
    model: "bloom-176b",
    hardware: "h100-80gb",
    tp: 8,
    gpu: "h100-sxm-80gb",
    file: "bloom-176b-h100-tp8.csv",
  },
] as const;

export function fixtureText(fixture: (typeof SPLITWISE_FIXTURES)[number], table: string): string {
  const rows = splitwiseTableToProfile(table, fixture, fixture.gpu);
  return formatProfileCsv(rows, [
    `${fixture.model} on ${fixture.hardware} at TP ${fixture.tp}, converted from data/perf/splitwise_perf_model.csv`,
    "(upstream splitwise-sim measurements, MIT; median of repeats). prefill: batch x seq_len = prompt_time;",
    "decode: context = prompt_size + token_size / 2 (mean context of the generation) = token_time.",
    "Regenerate: node --import tsx profiler/convert-splitwise.ts",
  ]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const table = readFileSync(DEFAULT_PERF_TABLE, "utf8");
  for (const fixture of SPLITWISE_FIXTURES) {
    const path = join(PACKAGE_ROOT, "test", "model", "fixtures", fixture.file);
    writeFileSync(path, fixtureText(fixture, table));
    process.stdout.write(`wrote ${path}\n`);
  }
}
