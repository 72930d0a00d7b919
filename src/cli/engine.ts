import type { Command } from "commander";
import { defineEngineCommand } from "../live/engine/command.ts";

/** `splitscale engine`: the emulated OpenAI-compatible engine (src/live/engine). */
export function registerEngineCommand(program: Command): void {
  defineEngineCommand(program.command("engine"));
}
