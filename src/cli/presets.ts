import type { Command } from "commander";
import { listPresets, DEFAULT_PRESET } from "../config/presets.ts";
import { formatTable, terminalWidth } from "../report/table.ts";

export function registerPresetsCommand(program: Command): void {
  program
    .command("presets")
    .description("List the built-in configurations (use one with `simulate --preset NAME`).")
    .option("--json", "print as JSON")
    .action((options: { json?: boolean }) => {
      const presets = listPresets();
      if (options.json === true) {
        process.stdout.write(
          `${JSON.stringify(
            presets.map(({ name, description }) => ({ name, description })),
            null,
            2,
          )}\n`,
        );
        return;
      }
      const rows = presets.map((preset) => [
        preset.name === DEFAULT_PRESET ? `${preset.name} (default)` : preset.name,
        preset.description,
      ]);
      process.stdout.write(
        `${formatTable(["preset", "description"], rows, { maxWidth: terminalWidth() })}\n`,
      );
    });
}
