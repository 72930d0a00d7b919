import { Command, CommanderError } from "commander";
import { ConfigError, UsageError } from "../errors.ts";
import { WorkloadError } from "../workload/errors.ts";
import { registerPerfCommand } from "./perf.ts";
import { registerPresetsCommand } from "./presets.ts";
import { registerCompareCommand } from "./compare.ts";
import { registerSweepCommand } from "./sweep.ts";
import { registerPoliciesCommand } from "./policies.ts";
import { registerSimulateCommand } from "./simulate.ts";
import { registerEngineCommand } from "./engine.ts";
import { registerServeCommand } from "./serve.ts";
import { registerWorkersCommand } from "./workers.ts";
import { registerQueueCommand } from "./queue.ts";
import { registerStatusCommand } from "./status.ts";
import { registerTrainCommand } from "./train.ts";

/** Exit codes: 0 success, 2 usage error (bad flags, config, input files), 3 run failure. */
export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 3;

const program = new Command()
  .name("splitscale")
  .description(
    "Design, compare and run autoscaling policies for LLM inference on a fast Splitwise-style simulator.",
  )
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride();

registerSimulateCommand(program);
registerCompareCommand(program);
registerSweepCommand(program);
registerPresetsCommand(program);
registerPoliciesCommand(program);
registerPerfCommand(program);
registerEngineCommand(program);
registerServeCommand(program);
registerWorkersCommand(program);
registerQueueCommand(program);
registerStatusCommand(program);
registerTrainCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  if (error instanceof UsageError || error instanceof WorkloadError) {
    process.stderr.write(`splitscale: ${error.message}\n`);
    process.exit(EXIT_USAGE);
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`splitscale: cannot run this configuration: ${error.message}\n`);
    process.exit(EXIT_FAILURE);
  }
  const fileProblem = fileSystemProblem(error);
  if (fileProblem !== undefined) {
    process.stderr.write(`splitscale: ${fileProblem.message}\n`);
    process.exit(fileProblem.badInput ? EXIT_USAGE : EXIT_FAILURE);
  }
  process.stderr.write(
    `splitscale: run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(EXIT_FAILURE);
}

/**
 * A file or directory the user named that cannot be used (a trace that is a directory, an --out that
 * is a file, a missing or unreadable path): said in one line, without a stack. Paths that exist but
 * are the wrong kind, or missing, are bad input (exit 2); a full disk or I/O error fails the run.
 */
function fileSystemProblem(error: unknown): { message: string; badInput: boolean } | undefined {
  const { code, path, syscall } = error as NodeJS.ErrnoException;
  if (typeof code !== "string" || typeof path !== "string") return undefined;
  const reasons: Record<string, string> = {
    ENOENT: "no such file or directory",
    EISDIR: "it is a directory, a file was expected",
    ENOTDIR: "a part of the path is a file, a directory was expected",
    EEXIST: "a file of that name exists, a directory was expected",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
  };
  const reason = reasons[code];
  const action =
    syscall === "mkdir"
      ? "create directory"
      : syscall === "open" || syscall === "read"
        ? "read"
        : (syscall ?? "use");
  if (reason !== undefined) return { message: `cannot ${action} ${path}: ${reason}`, badInput: true };
  return { message: `cannot ${action} ${path}: ${(error as Error).message}`, badInput: false };
}
