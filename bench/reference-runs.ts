// The upstream splitwise-sim runs vendored for the parity tests, as the benchmarks replay them.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Upstream splitwise-sim runs vendored for the parity tests. */
export const REFERENCE = fileURLToPath(new URL("../test/fixtures/splitwise-sim/", import.meta.url));

/** A vendored run's config.yaml and the trace its Hydra overrides name. */
export function referenceRun(name: string): { config: string; trace: string } {
  const dir = join(REFERENCE, "runs", name);
  const overrides = existsSync(join(dir, "overrides.txt"))
    ? readFileSync(join(dir, "overrides.txt"), "utf8")
    : "";
  const trace = /^trace\.filename=(.+)$/m.exec(overrides)?.[1]?.trim() ?? "missing";
  return { config: join(dir, "config.yaml"), trace: join(REFERENCE, "traces", `${trace}.csv`) };
}
