import cliProgress from "cli-progress";

const SIMULATE_FORMAT = "{label} [{bar}] {percentage}% | sim {sim}s | {completed}/{arrived} done";

/** A progress bar on stderr for long runs; prints periodic lines when stderr is not a terminal. */
export class ProgressReporter {
  private readonly bar: cliProgress.SingleBar;
  private started = false;

  constructor(
    label: string,
    private readonly enabled: boolean,
    format = SIMULATE_FORMAT,
  ) {
    this.bar = new cliProgress.SingleBar(
      {
        format: format.replace("{label}", label).replace(/^\{bar\}/, `${label} [{bar}]`),
        stream: process.stderr,
        noTTYOutput: !process.stderr.isTTY,
        notTTYSchedule: 5000,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  /** Simulation progress: `fraction` of the work done plus the live counters shown. */
  update(fraction: number, fields: { sim: string; completed: number; arrived: number }): void {
    if (!this.enabled) return;
    if (!this.started) {
      this.bar.start(1000, 0, fields);
      this.started = true;
    }
    this.bar.update(Math.min(1000, Math.round(fraction * 1000)), fields);
  }

  /** Counted progress (runs, steps): `done` of `total`. */
  updateCount(done: number, total: number, fields: Record<string, string | number> = {}): void {
    if (!this.enabled) return;
    if (!this.started) {
      this.bar.start(total, 0, fields);
      this.started = true;
    }
    this.bar.setTotal(total);
    this.bar.update(done, fields);
  }

  stop(): void {
    if (this.started) this.bar.stop();
  }
}
