import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import { UsageError } from "../errors.ts";
import { createKthenaPolicy } from "./kthena/policy.ts";
import { loadKthenaPolicyText } from "./kthena/config.ts";
import { isRlPolicyFile } from "../rl/checkpoint.ts";
import { findPolicy, type PolicyContext } from "./registry.ts";
import type { Policy } from "./types.ts";

/**
 * A policy file is either splitscale's own YAML (`policy: NAME` plus `policy_config: {...}`), or
 * Kubernetes-style MatrixInfer/Kthena objects (`apiVersion` + `kind: AutoscalingPolicy[Binding]`,
 * one or several documents, exactly as written for the cluster), or an RL policy trained by
 * `splitscale train` (JSON with `format: splitscale-rl/1`). The kind is told from the content.
 */
const ownFileSchema = z.strictObject({
  policy: z.string(),
  policy_config: z.record(z.string(), z.unknown()).default({}),
  description: z.string().optional(),
});

export function loadPolicyFile(path: string, context: PolicyContext): Policy {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read policy file ${path}: ${(error as Error).message}`);
  }
  return policyFromText(text, path, context);
}

export function policyFromText(text: string, path: string, context: PolicyContext): Policy {
  // An RL policy (`splitscale train`'s policy.json) is JSON with a `format` key; JSON.parse is also
  // much faster than the YAML parser on its long weight arrays.
  if (text.trimStart().startsWith("{")) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined; // YAML flow mapping, or broken: the YAML path reports it
    }
    if (isRlPolicyFile(json))
      return findPolicy("rl", `${path}: format`).create({ checkpoint: path }, { ...context, source: path });
  }
  const documents = parseAllDocuments(text);
  const first = Array.isArray(documents) ? documents[0] : documents;
  const syntaxError = first?.errors[0];
  if (syntaxError !== undefined)
    throw new UsageError(`${path}: YAML syntax error: ${syntaxError.message.split("\n")[0]}`);
  const value: unknown = first?.toJS();
  if (value !== null && typeof value === "object" && ("apiVersion" in value || "kind" in value)) {
    return createKthenaPolicy(loadKthenaPolicyText(text, path), context.pools);
  }
  const parsed = ownFileSchema.safeParse(value ?? {});
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `${path}: ${issue.path.map(String).join(".") || "(top level)"}: ${issue.message}`,
    );
    throw new UsageError(
      `not a policy file (expected \`policy: NAME\` with \`policy_config\`, or MatrixInfer/Kthena YAML with apiVersion and kind)\n  ${lines.join("\n  ")}`,
    );
  }
  const entry = findPolicy(parsed.data.policy, `${path}: policy`);
  return entry.create(parsed.data.policy_config, { ...context, source: path });
}
