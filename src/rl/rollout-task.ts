import { runEpisode, type RolloutInput, type RolloutOutput } from "./rollout.ts";

/** Worker-thread entry (`{ task: "rl/rollout-task", input }`, loaded by bin/worker.js): one episode. */
export default function rolloutTask(input: RolloutInput): RolloutOutput {
  return runEpisode(input);
}
