import { ConfigError } from "../errors.ts";
import { kvBytesPerToken, lookup, type Catalog, type ModelSpec, type SkuSpec } from "../model/catalog.ts";
import type { PerformanceModel } from "../model/performance.ts";
import { Instance, type BatchingConfig, type InstanceHost, type InstanceRole } from "./instance.ts";

export interface ServerGroup {
  readonly sku: string;
  readonly count: number;
}

export interface InstanceTemplate extends BatchingConfig {
  readonly tensorParallelism: number;
  readonly pipelineParallelism: number;
}

export interface PoolTemplate extends InstanceTemplate {
  readonly numInstances: number;
  /** Heterogeneous split: the SKUs that host this pool. */
  readonly skus: readonly string[];
}

export type StartState =
  | { readonly type: "unallocated" }
  | { readonly type: "baseline" | "orca"; readonly instance: InstanceTemplate }
  | {
      readonly type: "splitwise";
      readonly split: "homogeneous" | "heterogeneous";
      readonly prompt: PoolTemplate;
      readonly token: PoolTemplate;
    };

export class Server {
  readonly instances: Instance[] = [];
  removedAt = -1;
  constructor(
    readonly id: number,
    readonly sku: SkuSpec,
    readonly createdAt: number,
  ) {}
}

export interface ClusterOptions {
  readonly kvCacheIgnoresGqa: boolean;
  /** Upstream gives a uniform (baseline/orca) instance all GPUs of its server whatever its TP. */
  readonly uniformUsesAllGpus: boolean;
  /** Reserve a request's decode KV cache when its prefill starts or its KV shipment starts. */
  readonly reserveDecodeUpFront: boolean;
}

/** Servers and the instances carved out of them; ids follow creation order as upstream. */
export class Cluster {
  readonly servers: Server[] = [];
  readonly instances: Instance[] = [];
  /** KV-cache tokens of the largest instance created so far (a request needing more can never run). */
  maxKvTokens = 0;
  private nextServerId = 0;
  private nextInstanceId = 0;

  constructor(
    readonly catalog: Catalog,
    readonly model: ModelSpec,
    readonly perf: PerformanceModel,
    private readonly host: InstanceHost,
    private readonly options: ClusterOptions,
  ) {}

  addServer(skuName: string, where: string): Server {
    const sku = lookup(this.catalog.skus, "sku", skuName, where);
    const server = new Server(this.nextServerId++, sku, this.host.clock.now);
    this.servers.push(server);
    return server;
  }

  /**
   * GPUs an instance of `template` takes when it has a server to itself (autoscaling): its tensor x
   * pipeline parallelism, or every GPU of the server with `uniformUsesAllGpus` (upstream and the DRL
   * fork, which give a TP4 instance 8 GPUs' memory but TP4's speed). The whole server is billed either way.
   */
  gpusForDedicatedInstance(server: Server, template: InstanceTemplate): number {
    return this.options.uniformUsesAllGpus
      ? server.sku.gpus
      : template.tensorParallelism * template.pipelineParallelism;
  }

  /** Creates an instance on `gpus` GPUs of `server`; refuses models that do not fit. */
  addInstance(
    server: Server,
    gpus: number,
    template: InstanceTemplate,
    role: InstanceRole,
    where: string,
  ): Instance {
    const processor = lookup(
      this.catalog.processors,
      "processor",
      server.sku.processor,
      `catalog sku ${server.sku.name}`,
    );
    const maxMemory = processor.memory_bytes * gpus;
    if (this.model.weights_bytes >= maxMemory) {
      throw new ConfigError(
        `${where}: model ${this.model.name} needs ${(this.model.weights_bytes / 2 ** 30).toFixed(1)} GiB of weights but an instance of ` +
          `${gpus} x ${processor.name} has ${(maxMemory / 2 ** 30).toFixed(1)} GiB; use a larger tensor_parallelism or another SKU`,
      );
    }
    const usedGpus = server.instances.reduce((sum, instance) => sum + instance.numGpus, 0);
    if (usedGpus + gpus > server.sku.gpus) {
      throw new ConfigError(
        `${where}: server ${server.id} (${server.sku.name}) has only ${server.sku.gpus - usedGpus} free GPUs, ${gpus} requested`,
      );
    }
    const instance = new Instance(
      this.nextInstanceId++,
      processor.name,
      role,
      server.sku.name,
      server.id,
      gpus,
      maxMemory,
      this.model.weights_bytes,
      kvBytesPerToken(this.model, this.options.kvCacheIgnoresGqa),
      template,
      this.perf.forInstance(this.model.name, processor.name, template.tensorParallelism),
      template.tensorParallelism,
      this.host,
    );
    instance.reserveDecodeUpFront = this.options.reserveDecodeUpFront;
    server.instances.push(instance);
    this.instances.push(instance);
    const kvTokens = Math.floor((maxMemory - this.model.weights_bytes) / instance.kvBytesPerToken);
    if (kvTokens > this.maxKvTokens) this.maxKvTokens = kvTokens;
    return instance;
  }

  /** Builds the servers of `groups` (in order) and lays out instances as the start state says. */
  build(groups: readonly ServerGroup[], startState: StartState): Instance[] {
    const servers: Server[] = [];
    groups.forEach((group, index) => {
      for (let i = 0; i < group.count; i++)
        servers.push(this.addServer(group.sku, `cluster.servers[${index}].sku`));
    });
    const created: Instance[] = [];
    const perServer = (
      server: Server,
      template: InstanceTemplate,
      role: InstanceRole,
      where: string,
    ): void => {
      const tp = template.tensorParallelism * template.pipelineParallelism;
      if (tp > server.sku.gpus) {
        throw new ConfigError(
          `${where}.tensor_parallelism: ${tp} GPUs per instance but ${server.sku.name} has ${server.sku.gpus}`,
        );
      }
      for (let used = 0; used + tp <= server.sku.gpus; used += tp) {
        created.push(this.addInstance(server, tp, template, role, where));
      }
    };

    switch (startState.type) {
      case "unallocated":
        break;
      case "baseline":
      case "orca":
        for (const server of servers) {
          if (this.options.uniformUsesAllGpus) {
            created.push(
              this.addInstance(server, server.sku.gpus, startState.instance, null, "start_state.instance"),
            );
          } else {
            perServer(server, startState.instance, null, "start_state.instance");
          }
        }
        break;
      case "splitwise":
        if (startState.split === "homogeneous") {
          const needed = startState.prompt.numInstances + startState.token.numInstances;
          if (needed > servers.length) {
            throw new ConfigError(
              `start_state: ${startState.prompt.numInstances} prompt + ${startState.token.numInstances} token servers requested but the cluster has ${servers.length}; ` +
                `raise cluster.servers[].count or lower start_state.prompt/token.num_instances`,
            );
          }
          servers.forEach((server, index) => {
            if (index < startState.prompt.numInstances)
              perServer(server, startState.prompt, "prompt", "start_state.prompt");
            else if (index < needed) perServer(server, startState.token, "token", "start_state.token");
          });
        } else {
          const skusInOrder = [...new Set(groups.map((group) => group.sku))];
          for (const sku of skusInOrder) {
            const group = { sku };
            const role: InstanceRole = startState.prompt.skus.includes(group.sku)
              ? "prompt"
              : startState.token.skus.includes(group.sku)
                ? "token"
                : null;
            if (role === null) {
              throw new ConfigError(
                `start_state: sku ${group.sku} is in neither start_state.prompt.skus (${startState.prompt.skus.join(", ")}) nor start_state.token.skus (${startState.token.skus.join(", ")})`,
              );
            }
            const template = role === "prompt" ? startState.prompt : startState.token;
            for (const server of servers)
              if (server.sku.name === group.sku) perServer(server, template, role, `start_state.${role}`);
          }
        }
        break;
    }
    return created;
  }

  /**
   * Takes an instance off its server. It stays in `instances` (with `removedAt` set) so its cost,
   * energy and utilization are still accounted at the end of the run.
   */
  removeInstance(instance: Instance, now: number): void {
    instance.removedAt = now;
    const server = this.servers[instance.serverId];
    if (server !== undefined) {
      const index = server.instances.indexOf(instance);
      if (index >= 0) server.instances.splice(index, 1);
    }
  }

  /** Releases a server (its cost stops accruing); refused while it still hosts instances. */
  removeServer(server: Server, now: number): void {
    if (server.instances.length > 0) {
      throw new Error(`internal: server ${server.id} still hosts ${server.instances.length} instance(s)`);
    }
    server.removedAt = now;
  }

  /** Servers of a SKU that have not been released. */
  liveServerCount(sku: string): number {
    let count = 0;
    for (const server of this.servers) if (server.removedAt < 0 && server.sku.name === sku) count++;
    return count;
  }
}
