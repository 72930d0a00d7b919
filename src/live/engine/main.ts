/**
 * Light entry point for `splitscale engine`: the same command, without loading every other command
 * (the full CLI takes seconds to import). The process actuator spawns this by default.
 */
import { Command, CommanderError } from "commander";
import { ConfigError, UsageError } from "../../errors.ts";
import { defineEngineCommand } from "./command.ts";

const program = defineEngineCommand(new Command("splitscale-engine")).showHelpAfterError().exitOverride();

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
  if (error instanceof UsageError) {
    process.stderr.write(`splitscale engine: ${error.message}\n`);
    process.exit(2);
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(
    `splitscale engine: ${error instanceof ConfigError ? "cannot run this configuration: " : ""}${message}\n`,
  );
  process.exit(3);
}
