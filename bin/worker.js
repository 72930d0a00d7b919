// Worker-thread entry for parallel runs (piscina). In a source checkout it registers tsx so the
// TypeScript task modules load directly; an installed package imports the compiled dist/ modules.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const fromSource = existsSync(join(root, "src", "cli", "main.ts"));
if (fromSource) {
  const { register } = await import("tsx/esm/api");
  register();
}

/** Runs `{ task: "simulate/compare-task", input }`: the task module's default export on `input`. */
export default async function runTask({ task, input }) {
  const file = fromSource ? join(root, "src", `${task}.ts`) : join(root, "dist", `${task}.js`);
  const module = await import(pathToFileURL(file).href);
  return module.default(input);
}
