import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfigFile, parseConfigText } from "../../src/config/config.ts";
import { presetPath } from "../../src/config/presets.ts";
import { withAbsolutePaths } from "../../src/config/resolved-config.ts";
import { PACKAGE_ROOT } from "../../src/paths.ts";
import { configHash } from "../../src/simulate/run.ts";

void describe("configHash", () => {
  const preset = loadConfigFile(presetPath("azure-conv-splitwise-hh"));

  void it("is the same for a config and its config.resolved.yaml (relative paths made absolute)", () => {
    const resolvedText = stringify(withAbsolutePaths(preset.config, preset.baseDir, preset.source));
    const rerun = parseConfigText(resolvedText, "config.resolved.yaml", "/somewhere/else/out");
    assert.equal(configHash(rerun), configHash(preset));
  });

  void it("does not depend on where the config file sits when its paths point at the same files", () => {
    const moved = parseConfigText(
      stringify(withAbsolutePaths(preset.config, preset.baseDir, preset.source)),
      "moved.yaml",
      join(PACKAGE_ROOT, "docs"),
    );
    assert.equal(configHash(moved), configHash(preset));
  });

  void it("changes when a setting or a file changes", () => {
    const base = configHash(preset);
    const seeded = { ...preset, config: { ...preset.config, seed: preset.config.seed + 1 } };
    assert.notEqual(configHash(seeded), base);
    const otherTrace = parseConfigText("workload: { type: trace, path: other.csv }\n", "a.yaml", "/data/one");
    const sameNameElsewhere = parseConfigText(
      "workload: { type: trace, path: other.csv }\n",
      "a.yaml",
      "/data/two",
    );
    assert.notEqual(configHash(otherTrace), configHash(sameNameElsewhere));
  });
});
