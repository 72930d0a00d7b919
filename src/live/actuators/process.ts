/**
 * The `process` actuator: workers are processes on this machine.
 *
 * - Start: the worker command (default: the emulated engine) with {port} and friends filled in, in its
 *   own process group, on a port no other worker holds. Ready once GET {health_path} answers 200.
 * - Scale down: cancel starting workers first (newest first: they have done no work), then drain the
 *   policy's victims, then the least-loaded ready workers. Draining = no new requests; when the
 *   gateway has nothing in flight on it (or after drain_timeout_s) it gets SIGTERM, then SIGKILL after
 *   stop_timeout_s. A scale-up while a worker drains takes it back (it is warm).
 * - Crashes: a worker that exits on its own is restarted on a fresh port after a backoff that doubles
 *   per crash (reset once it has stayed up reset_after_s); its requests in flight fail and the gateway
 *   retries them once elsewhere. Meanwhile it counts as `starting` with `restarts` incremented.
 * - Shutdown: every worker gets SIGTERM then SIGKILL; a process `exit` hook kills what is left.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { join, resolve } from "node:path";
import { request } from "undici";
import type { ProcessActuatorConfig } from "../../config/serve-schema.ts";
import { PACKAGE_ROOT } from "../../paths.ts";
import type { Actuator } from "../controller.ts";
import type { Logger } from "../log.ts";
import type { Worker, WorkerRegistry } from "../workers.ts";
import { PortAllocator } from "./ports.ts";

export interface ProcessPool {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly initial: number;
}

export interface ProcessActuatorOptions {
  readonly config: ProcessActuatorConfig;
  readonly pools: readonly ProcessPool[];
  readonly registry: WorkerRegistry;
  readonly log: Logger;
  readonly baseDir: string;
  /** Values for {model}, {served_model}, {gpu}, {tp}. */
  readonly placeholders: Readonly<Record<string, string>>;
}

interface Managed {
  readonly worker: Worker;
  port: number | undefined;
  child: ChildProcess | undefined;
  /** Set when we stop it on purpose (an exit is then not a crash). */
  stopping: boolean;
  crashes: number;
  startedAtMs: number;
  exited: Promise<void>;
  timers: Set<NodeJS.Timeout>;
  readonly logTail: string[];
}

const LOG_TAIL = 20;

/** The JS entry points of this installation (source checkout via tsx, or the compiled dist/). */
function selfCommand(kind: "engine" | "cli"): string[] {
  const source = join(PACKAGE_ROOT, "src", kind === "engine" ? "live/engine/main.ts" : "cli/main.ts");
  if (existsSync(source)) return [process.execPath, "--import", import.meta.resolve("tsx"), source];
  return [
    process.execPath,
    join(PACKAGE_ROOT, "dist", kind === "engine" ? "live/engine/main.js" : "cli/main.js"),
  ];
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

function fill(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{([a-z_]+)\}/g, (match, key: string) => values[key] ?? match);
}

export class ProcessActuator implements Actuator {
  readonly kind = "process" as const;
  private readonly managed = new Map<string, Managed>();
  private readonly ports: PortAllocator;
  private readonly counters = new Map<string, number>();
  private closed = false;
  private readonly exitHook = (): void => {
    for (const entry of this.managed.values()) killGroup(entry.child, "SIGKILL");
  };

  constructor(private readonly options: ProcessActuatorOptions) {
    const { ports, host } = options.config;
    this.ports = new PortAllocator(host, ports.from, ports.to);
    process.on("exit", this.exitHook);
  }

  async start(): Promise<void> {
    for (const pool of this.options.pools) for (let i = 0; i < pool.initial; i++) this.launch(pool.name);
    await Promise.resolve();
  }

  desired(pool: string): number {
    let count = 0;
    for (const worker of this.options.registry.live(pool))
      if (worker.phase === "starting" || worker.phase === "ready") count++;
    return count;
  }

  metricsUrl(worker: Worker): string | undefined {
    return worker.url === undefined ? undefined : `${worker.url}${this.options.config.metrics_path}`;
  }

  /** The command a worker runs, as argv (a string command runs through /bin/sh). */
  commandFor(worker: Worker, port: number): string[] {
    const config = this.options.config;
    const values: Record<string, string> = {
      ...this.options.placeholders,
      port: String(port),
      host: config.host,
      id: worker.id,
      pool: worker.pool,
    };
    const command = config.command;
    if (command === undefined) {
      const engine = config.engine;
      return [
        ...selfCommand("engine"),
        "--host",
        config.host,
        "--port",
        String(port),
        "--model",
        values.model ?? "llama2-70b",
        "--served-model-name",
        values.served_model ?? values.model ?? "llama2-70b",
        "--gpu",
        values.gpu ?? "h100",
        "--tp",
        values.tp ?? "8",
        "--time-scale",
        String(engine.time_scale),
        "--load-delay",
        String(engine.load_delay_s),
        "--max-batch-size",
        String(engine.max_batch_size),
        "--max-batch-tokens",
        String(engine.max_batch_tokens),
        "--log-level",
        "warn",
        ...engine.args.map((arg) => fill(arg, values)),
      ];
    }
    if (Array.isArray(command)) {
      const argv = command.map((word) => fill(word, values));
      if (argv[0] === "splitscale")
        return argv[1] === "engine"
          ? [...selfCommand("engine"), ...argv.slice(2)]
          : [...selfCommand("cli"), ...argv.slice(1)];
      return argv;
    }
    let text = fill(command, values).trim();
    if (/^splitscale\s+engine(\s|$)/.test(text))
      text = `${selfCommand("engine").map(shellQuote).join(" ")}${text.replace(/^splitscale\s+engine/, "")}`;
    else if (/^splitscale(\s|$)/.test(text))
      text = `${selfCommand("cli").map(shellQuote).join(" ")}${text.replace(/^splitscale/, "")}`;
    return ["/bin/sh", "-c", `exec ${text}`];
  }

  private launch(pool: string): Worker {
    const n = (this.counters.get(pool) ?? 0) + 1;
    this.counters.set(pool, n);
    const worker = this.options.registry.add({
      id: `${pool}-${n}`,
      pool,
      phase: "starting",
      note: "starting",
    });
    const entry: Managed = {
      worker,
      port: undefined,
      child: undefined,
      stopping: false,
      crashes: 0,
      startedAtMs: Date.now(),
      exited: Promise.resolve(),
      timers: new Set(),
      logTail: [],
    };
    this.managed.set(worker.id, entry);
    void this.spawnProcess(entry);
    return worker;
  }

  private later(entry: Managed, ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      entry.timers.delete(timer);
      fn();
    }, ms);
    entry.timers.add(timer);
  }

  private clearTimers(entry: Managed): void {
    for (const timer of entry.timers) clearTimeout(timer);
    entry.timers.clear();
  }

  private async spawnProcess(entry: Managed): Promise<void> {
    const { config, log, registry } = this.options;
    const worker = entry.worker;
    if (this.closed || entry.stopping) return;
    let port: number;
    try {
      port = await this.ports.allocate();
    } catch (error) {
      log.error(`worker ${worker.id}: ${(error as Error).message}; retrying in 1 s`);
      this.later(entry, 1000, () => void this.spawnProcess(entry));
      return;
    }
    if (this.closed || entry.stopping) {
      this.ports.release(port);
      return;
    }
    entry.port = port;
    const argv = this.commandFor(worker, port);
    let stdio: ["ignore", number | "pipe", number | "pipe"] = ["ignore", "pipe", "pipe"];
    let logFd: number | undefined;
    if (config.log_dir !== undefined) {
      const dir = resolve(this.options.baseDir, config.log_dir);
      mkdirSync(dir, { recursive: true });
      logFd = openSync(join(dir, `${worker.id}.log`), "a");
      stdio = ["ignore", logFd, logFd];
    }
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        detached: true,
        stdio,
        env: { ...process.env, ...config.env },
      });
    } catch (error) {
      this.onExit(entry, null, null, `cannot start: ${(error as Error).message}`);
      return;
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
    entry.child = child;
    entry.startedAtMs = Date.now();
    entry.logTail.length = 0; // the output of this process only
    worker.url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
    worker.pid = child.pid;
    const keep = (data: Buffer): void => {
      for (const line of data.toString("utf8").split("\n")) {
        if (line.trim() === "") continue;
        entry.logTail.push(line);
        if (entry.logTail.length > LOG_TAIL) entry.logTail.shift();
      }
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    let spawnError: string | undefined;
    let finished = false;
    entry.exited = new Promise<void>((resolveExit) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (finished) return;
        finished = true;
        this.onExit(entry, code, signal, spawnError);
        resolveExit();
      };
      child.on("error", (error) => {
        spawnError = `cannot start: ${error.message}`;
        // 'exit' may not follow a spawn failure.
        if (child.pid === undefined) finish(null, null);
      });
      // 'close' comes once the output pipes are drained (so the crash log has the last lines); a
      // process whose children keep the pipes open gets 200 ms after 'exit'.
      child.once("exit", (code, signal) => {
        const timer = setTimeout(() => finish(code, signal), 200);
        child.once("close", () => {
          clearTimeout(timer);
          finish(code, signal);
        });
      });
    });
    log.info(
      `worker ${worker.id}: started pid ${child.pid ?? "?"} on port ${port}${worker.restarts > 0 ? ` (restart ${worker.restarts})` : ""}`,
    );
    registry.setPhase(
      worker.id,
      "starting",
      worker.restarts > 0 ? `restarted (${worker.restarts})` : "loading",
    );
    void this.probe(entry, child);
  }

  /** Polls the health endpoint until 200, the readiness timeout, or the process going away. */
  private async probe(entry: Managed, child: ChildProcess): Promise<void> {
    const { config, registry, log } = this.options;
    const deadline = Date.now() + config.readiness.timeout_s * 1000;
    const url = `${entry.worker.url}${config.health_path}`;
    while (
      !this.closed &&
      !entry.stopping &&
      entry.child === child &&
      child.exitCode === null &&
      child.signalCode === null
    ) {
      try {
        const response = await request(url, {
          method: "GET",
          headersTimeout: 1000,
          bodyTimeout: 1000,
          signal: AbortSignal.timeout(1500),
        });
        await response.body.dump();
        if (response.statusCode === 200) {
          if (entry.child !== child || entry.stopping || this.closed) return;
          if (entry.worker.phase === "starting") {
            registry.setPhase(entry.worker.id, "ready", "");
            log.info(`worker ${entry.worker.id}: ready at ${entry.worker.url}`);
          }
          return;
        }
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        log.error(`worker ${entry.worker.id}: not ready after ${config.readiness.timeout_s} s; killing it`);
        entry.worker.note = `not ready after ${config.readiness.timeout_s} s`;
        killGroup(child, "SIGKILL");
        return;
      }
      await new Promise((r) => setTimeout(r, config.readiness.interval_s * 1000));
    }
  }

  private onExit(entry: Managed, code: number | null, signal: NodeJS.Signals | null, error?: string): void {
    const { registry, log, config } = this.options;
    const worker = entry.worker;
    if (entry.port !== undefined) this.ports.release(entry.port);
    entry.port = undefined;
    entry.child = undefined;
    worker.pid = undefined;
    const how =
      error !== undefined ? error : signal !== null ? `signal ${signal}` : `exit code ${code ?? "?"}`;
    if (entry.stopping || this.closed || worker.phase === "draining" || worker.phase === "stopping") {
      this.clearTimers(entry);
      this.managed.delete(worker.id);
      registry.remove(worker.id, entry.stopping ? "stopped" : `exited (${how}) while draining`);
      log.info(`worker ${worker.id}: stopped (${how})`);
      return;
    }
    const upFor = Date.now() - entry.startedAtMs;
    if (upFor >= config.restart.reset_after_s * 1000) entry.crashes = 0;
    entry.crashes++;
    worker.restarts++;
    const backoff = Math.min(
      config.restart.max_backoff_s,
      config.restart.backoff_s * 2 ** (entry.crashes - 1),
    );
    const tail = entry.logTail.slice(-3).join(" | ");
    log.warn(
      `worker ${worker.id}: crashed (${how})${tail === "" ? "" : `; last output: ${tail}`}; restarting in ${backoff} s`,
    );
    registry.setPhase(worker.id, "starting", `crashed (${how}); restarting in ${backoff} s`);
    worker.url = undefined;
    this.later(entry, backoff * 1000, () => void this.spawnProcess(entry));
  }

  /** Stops a worker now: SIGTERM to its process group, SIGKILL after stop_timeout_s. */
  private stop(entry: Managed, note: string): void {
    const { registry, config } = this.options;
    entry.stopping = true;
    this.clearTimers(entry);
    const child = entry.child;
    if (child === undefined) {
      this.managed.delete(entry.worker.id);
      registry.remove(entry.worker.id, note);
      return;
    }
    registry.setPhase(entry.worker.id, "stopping", note);
    killGroup(child, "SIGTERM");
    this.later(entry, config.stop_timeout_s * 1000, () => killGroup(child, "SIGKILL"));
  }

  /** Draining: no new requests; stopped when the gateway has none in flight on it, or at the drain timeout. */
  private drain(entry: Managed, reason: string): void {
    const { registry, config, log } = this.options;
    registry.setPhase(entry.worker.id, "draining", `draining: ${reason}`.slice(0, 200));
    const startedMs = Date.now();
    const check = (): void => {
      if (entry.stopping || entry.worker.phase !== "draining") return;
      if (entry.worker.inFlight === 0) {
        this.stop(entry, "drained");
        return;
      }
      if (Date.now() - startedMs >= config.drain_timeout_s * 1000) {
        log.warn(
          `worker ${entry.worker.id}: drain timeout with ${entry.worker.inFlight} request(s) in flight; stopping`,
        );
        this.stop(entry, "drain timeout");
        return;
      }
      this.later(entry, 100, check);
    };
    check();
  }

  async reconcile(pool: string, target: number, victims: readonly string[], reason: string): Promise<number> {
    const { registry, log } = this.options;
    const workers = registry.live(pool);
    const starting = workers.filter((w) => w.phase === "starting");
    const ready = workers.filter((w) => w.phase === "ready");
    const draining = workers.filter((w) => w.phase === "draining");
    let current = starting.length + ready.length;
    if (target > current) {
      // Take back draining workers first (warm), the busiest first.
      draining.sort((a, b) => b.inFlight - a.inFlight || a.id.localeCompare(b.id));
      for (const worker of draining) {
        if (current >= target) break;
        registry.setPhase(worker.id, "ready", "");
        log.info(`worker ${worker.id}: drain cancelled (scale up)`);
        current++;
      }
      while (current < target) {
        const worker = this.launch(pool);
        log.info(`worker ${worker.id}: scale up (${reason})`.slice(0, 300));
        current++;
      }
    } else if (target < current) {
      for (const worker of [...starting].sort((a, b) => b.createdAtMs - a.createdAtMs)) {
        if (current <= target) break;
        const entry = this.managed.get(worker.id);
        if (entry === undefined) continue;
        this.stop(entry, "scale-up cancelled");
        current--;
      }
      const named = new Set(victims);
      const order = [...ready].sort(
        (a, b) =>
          Number(named.has(b.id)) - Number(named.has(a.id)) ||
          a.inFlight - b.inFlight ||
          a.prefillTokensInFlight - b.prefillTokensInFlight ||
          b.createdAtMs - a.createdAtMs,
      );
      for (const worker of order) {
        if (current <= target) break;
        const entry = this.managed.get(worker.id);
        if (entry === undefined) continue;
        this.drain(entry, reason);
        current--;
      }
    }
    await Promise.resolve();
    return current;
  }

  /** Last lines a worker printed (for the admin API). */
  logTail(id: string): readonly string[] {
    return this.managed.get(id)?.logTail ?? [];
  }

  async close(): Promise<void> {
    this.closed = true;
    const exits: Promise<void>[] = [];
    for (const entry of this.managed.values()) {
      this.clearTimers(entry);
      entry.stopping = true;
      const child = entry.child;
      if (child === undefined) continue;
      killGroup(child, "SIGTERM");
      const force = setTimeout(() => killGroup(child, "SIGKILL"), this.options.config.stop_timeout_s * 1000);
      exits.push(entry.exited.finally(() => clearTimeout(force)));
    }
    await Promise.all(exits);
    for (const entry of [...this.managed.values()])
      this.options.registry.remove(entry.worker.id, "gateway shut down");
    this.managed.clear();
    process.off("exit", this.exitHook);
  }
}

function killGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): void {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}
