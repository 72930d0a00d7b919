import { z } from "zod";
import { UsageError, unknownNameMessage } from "../errors.ts";
import type { IterationTimeModel } from "../model/performance.ts";
import type { Policy, PoolCapacity, PoolRole } from "./types.ts";

/** What a policy may know about a pool when it is built (static facts, not observations). */
export interface PolicyPool {
  readonly name: string;
  readonly role: PoolRole;
  readonly capacity?: PoolCapacity;
  /** The pool's measured performance model, for capacity planners (Dynamo-style profiling). */
  readonly latency?: IterationTimeModel;
}

export interface PolicyContext {
  readonly pools: readonly PolicyPool[];
  /** Where the config came from, for error messages. */
  readonly source: string;
}

export interface PolicyEntry {
  readonly name: string;
  readonly description: string;
  readonly aliases?: readonly string[];
  /** Validates `config` (throwing UsageError that names the key) and builds the policy. */
  create(config: Readonly<Record<string, unknown>>, context: PolicyContext): Policy;
}

const entries = new Map<string, PolicyEntry>();
const aliases = new Map<string, string>();

export function registerPolicy(entry: PolicyEntry): void {
  entries.set(entry.name, entry);
  for (const alias of entry.aliases ?? []) aliases.set(alias, entry.name);
}

export function listPolicies(): PolicyEntry[] {
  return [...entries.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function findPolicy(name: string, where: string): PolicyEntry {
  const entry = entries.get(aliases.get(name) ?? name);
  if (entry === undefined) {
    throw new UsageError(
      `${where}: ${unknownNameMessage("policy", name, [...entries.keys(), ...aliases.keys()])}`,
    );
  }
  return entry;
}

/**
 * Parses a policy's config with its zod schema; errors name the source, the key path and what was
 * expected, so `autoscaling.policy_config.tolerance: expected number` points at the line to fix.
 */
export function parsePolicyConfig<T extends z.ZodType>(
  schema: T,
  config: Readonly<Record<string, unknown>>,
  where: string,
): z.output<T> {
  const result = schema.safeParse(config);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const path = issue.path.map(String).join(".");
    const message =
      issue.code === "unrecognized_keys"
        ? `unknown key ${issue.keys.map((key) => `"${key}"`).join(", ")}`
        : issue.message;
    return `${where}${path === "" ? "" : `.${path}`}: ${message}`;
  });
  throw new UsageError(`invalid policy config\n  ${lines.join("\n  ")}`);
}
