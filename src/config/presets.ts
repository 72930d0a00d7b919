import { existsSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { UsageError, unknownNameMessage } from "../errors.ts";
import { PRESETS_DIR } from "../paths.ts";
import { readRawConfig } from "./config.ts";

export const DEFAULT_PRESET = "azure-conv-autoscale";

export interface PresetInfo {
  readonly name: string;
  readonly description: string;
  readonly path: string;
}

/** Built-in configs shipped in presets/*.yaml. */
export function listPresets(): PresetInfo[] {
  if (!existsSync(PRESETS_DIR)) return [];
  return readdirSync(PRESETS_DIR)
    .filter((file) => file.endsWith(".yaml"))
    .sort()
    .map((file) => {
      const path = join(PRESETS_DIR, file);
      const raw = readRawConfig(path);
      return {
        name: basename(file, ".yaml"),
        description: typeof raw.description === "string" ? raw.description : "",
        path,
      };
    });
}

export function presetPath(name: string): string {
  const presets = listPresets();
  const preset = presets.find((candidate) => candidate.name === name);
  if (preset === undefined)
    throw new UsageError(
      `--preset: ${unknownNameMessage(
        "preset",
        name,
        presets.map((p) => p.name),
      )}`,
    );
  return preset.path;
}
