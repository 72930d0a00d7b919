import cliProgress from "cli-progress";

/** A progress bar on stderr for long runs; prints periodic lines when stderr is not a terminal. */
export class ProgressReporter {
  private readonly bar: cliProgress.SingleBar;
  private started = false;

  constructor(
    private readonly label: string,
    private readonly enabled: boolean,
  ) {
    this.bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | sim {sim}s | {completed}/{arrived} done | {eps} ev/s`,
        stream: process.stderr,
        noTTYOutput: !process.stderr.isTTY,
        notTTYSchedule: 5000,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  update(fraction: number, fields: { sim: string; completed: number; arrived: number; eps: string }): void {
    if (!this.enabled) return;
    if (!this.started) {
      this.bar.start(1000, 0, fields);
      this.started = true;
    }
    this.bar.update(Math.min(1000, Math.round(fraction * 1000)), fields);
  }

  stop(): void {
    if (this.started) this.bar.stop();
  }
}
