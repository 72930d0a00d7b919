/** A tiny leveled logger: one line per event on stderr (or wherever `write` sends it). */
export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function createLogger(
  name: string,
  level: LogLevel = "info",
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Logger {
  const emit =
    (at: LogLevel) =>
    (message: string): void => {
      if (ORDER[at] < ORDER[level]) return;
      write(`${new Date().toISOString()} ${at.toUpperCase().padEnd(5)} ${name}: ${message}`);
    };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/** A logger that keeps lines in memory (tests assert on what was logged). */
export function memoryLogger(lines: string[] = [], name = "test"): Logger & { readonly lines: string[] } {
  return Object.assign(
    createLogger(name, "debug", (line) => lines.push(line)),
    { lines },
  );
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
