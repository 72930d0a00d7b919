/**
 * The `kubernetes` actuator: scales Deployments, StatefulSets and custom workloads (MatrixInfer's
 * ModelInfer) through their scale subresource, with @kubernetes/client-node (~1.4: 2.x crashes on
 * Node 20).
 *
 * Per resync (and before every decision):
 * - Bindings: `AutoscalingPolicyBinding` custom resources (MatrixInfer/Kthena, any of `crd_groups`)
 *   in the namespace, with the `AutoscalingPolicy` each references; a binding is a pool named after
 *   its target (`targetRef.name`) and a Kthena policy built from the two objects exactly as
 *   `policy_file` would load them (HEAD-style standalone policies with a `homogeneousTarget` too).
 *   With `bindings: false`, `targets` in the config name the workloads and the config's policy scales them.
 * - Targets: GET .../scale gives the current target (`spec.replicas`) and the pod selector
 *   (`status.selector`); pods matching it are the pool's replicas: Running and Ready → ready,
 *   being deleted → draining, otherwise starting. Each pod's metrics page is scraped
 *   (`http://<podIP>:<port><path>`, port and path from the `splitscale.io/metrics-port`,
 *   `prometheus.io/port` and `prometheus.io/path` annotations or the config).
 * - Scaling: PATCH .../scale with a JSON merge patch of `spec.replicas`. Victims the policy names are
 *   first annotated with `controller.kubernetes.io/pod-deletion-cost: "-1000"`, which a Deployment's
 *   ReplicaSet honours when it picks pods to delete (StatefulSets always remove the highest ordinal).
 * - State: policy state (stabilization windows, panic mode, histories) is saved as JSON in a
 *   ConfigMap after each decision and read back at start-up, so a restarted controller resumes its
 *   windows instead of starting blank. The replica count itself lives in the workload.
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1Scale,
} from "@kubernetes/client-node";
import { stringify } from "yaml";
import type { KubernetesActuatorConfig, LoadedServeConfig } from "../../config/serve-schema.ts";
import { UsageError } from "../../errors.ts";
import { loadKthenaPolicyText } from "../../policy/kthena/config.ts";
import { createKthenaPolicy } from "../../policy/kthena/policy.ts";
import type { PolicyContext } from "../../policy/registry.ts";
import type { Policy } from "../../policy/types.ts";
import type { Actuator, DecisionRecord, PoolPlan, StateStore, UnitSpec } from "../controller.ts";
import type { Hardware } from "../engine/hardware.ts";
import type { Logger } from "../log.ts";
import type { Worker, WorkerRegistry } from "../workers.ts";
import { poolCapacityFor, type DynamicPools } from "../serve.ts";

export interface KubernetesActuatorOptions {
  readonly loaded: LoadedServeConfig;
  readonly hardware: Hardware;
  readonly registry: WorkerRegistry;
  readonly log: Logger;
  /** The config's policy (used with `bindings: false`). */
  readonly buildPolicy: (context: PolicyContext) => Policy;
  /** Injected by tests; default from the config (server/kubeconfig/in-cluster). */
  readonly kubeConfig?: KubeConfig;
}

interface TargetRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
}

interface PoolTarget {
  readonly pool: string;
  readonly ref: TargetRef;
  readonly min: number;
  readonly max: number;
  /** Last read or written `spec.replicas`. */
  replicas: number | undefined;
  selector: string | undefined;
  selectorWarned: boolean;
}

interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; generation?: number };
  spec?: Record<string, unknown>;
}

export const DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost";
const STATE_KEY = "state.json";
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** JSON that keeps ±Infinity and NaN (policy states use them for "no limit"). */
export function encodeState(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "number" && !Number.isFinite(v) ? { $number: String(v) } : v,
  );
}

export function decodeState(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === "$number") return Number((v as { $number: string }).$number);
    }
    return v;
  });
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

function describe(error: unknown): string {
  const status = statusOf(error);
  const body = (error as { body?: unknown }).body;
  let detail = "";
  if (typeof body === "string") {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      detail = parsed.message ?? body.slice(0, 200);
    } catch {
      detail = body.slice(0, 200);
    }
  }
  const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
  return status === undefined ? (message ?? "") : `HTTP ${status}${detail === "" ? "" : `: ${detail}`}`;
}

function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf("/");
  return slash < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

function fingerprintOf(...parts: unknown[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 16);
}

/** The workload a binding (or a HEAD-style policy) scales, in any of the API generations. */
function targetRefOf(
  spec: Record<string, unknown> | undefined,
): { ref: TargetRef; min: number; max: number } | undefined {
  if (spec === undefined) return undefined;
  const block = (spec.scalingConfiguration ?? spec.homogeneousTarget) as Record<string, unknown> | undefined;
  if (block === undefined) return undefined;
  const target = block.target as Record<string, unknown> | undefined;
  const ref = (target?.targetRef ?? block.targetRef) as Record<string, unknown> | undefined;
  const name =
    typeof ref?.name === "string" ? ref.name : typeof target?.name === "string" ? target.name : undefined;
  if (name === undefined) return undefined;
  const kind = typeof ref?.kind === "string" ? ref.kind : "ModelInfer";
  const apiVersion =
    typeof ref?.apiVersion === "string"
      ? ref.apiVersion
      : kind === "Deployment" || kind === "StatefulSet"
        ? "apps/v1"
        : "workload.matrixinfer.ai/v1alpha1";
  const min = typeof block.minReplicas === "number" ? block.minReplicas : 1;
  const max = typeof block.maxReplicas === "number" ? block.maxReplicas : Math.max(min, 1);
  return { ref: { apiVersion, kind, name }, min, max };
}

export class KubernetesActuator implements Actuator, DynamicPools {
  readonly kind = "kubernetes" as const;
  private readonly config: KubernetesActuatorConfig;
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly namespace: string;
  private targets = new Map<string, PoolTarget>();
  private plans = new Map<string, PoolPlan>();
  private unitSpecs: UnitSpec[] = [];
  private readonly metricsUrls = new Map<string, string>();
  private readonly missingGroups = new Set<string>();
  private lastSavedState: string | undefined;
  private stateExists: boolean | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly options: KubernetesActuatorOptions) {
    const config = options.loaded.config.actuator;
    if (config.type !== "kubernetes") throw new Error("internal: not a kubernetes actuator config");
    this.config = config;
    this.namespace = config.namespace;
    const kc = options.kubeConfig ?? KubernetesActuator.kubeConfigFor(config, options.loaded.baseDir);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  static kubeConfigFor(config: KubernetesActuatorConfig, baseDir: string): KubeConfig {
    const kc = new KubeConfig();
    if (config.server !== undefined) {
      kc.loadFromOptions({
        // client-node refuses plain http unless TLS verification is off (there is no TLS to verify).
        clusters: [
          {
            name: "splitscale",
            server: config.server,
            skipTLSVerify: config.insecure_skip_tls_verify || config.server.startsWith("http://"),
          },
        ],
        users: [{ name: "splitscale", ...(config.token === undefined ? {} : { token: config.token }) }],
        contexts: [
          { name: "splitscale", cluster: "splitscale", user: "splitscale", namespace: config.namespace },
        ],
        currentContext: "splitscale",
      });
    } else if (config.kubeconfig !== undefined) {
      kc.loadFromFile(resolve(baseDir, config.kubeconfig));
    } else {
      kc.loadFromDefault();
    }
    return kc;
  }

  pools(): ReadonlyMap<string, PoolPlan> {
    return this.plans;
  }

  units(): readonly UnitSpec[] {
    return this.unitSpecs;
  }

  async start(): Promise<void> {
    await this.refresh(true);
    const pools = [...this.plans.keys()];
    this.options.log.info(
      `kubernetes: namespace ${this.namespace}: ${pools.length === 0 ? "no scale targets yet" : `pools ${pools.join(", ")}`}`,
    );
  }

  /**
   * Re-reads bindings, targets and pods, at most once per `resync_s` unless forced; concurrent calls
   * share one pass. Never throws for one bad target. (Our own scale patches update the targets at
   * once, so a decision between two reads sees them.)
   */
  refresh(force = false): Promise<void> {
    if (
      !force &&
      this.refreshing === undefined &&
      Date.now() - this.lastRefreshMs < this.config.resync_s * 1000
    )
      return Promise.resolve();
    this.refreshing ??= this.refreshOnce().finally(() => {
      this.lastRefreshMs = Date.now();
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private lastRefreshMs = 0;

  private async refreshOnce(): Promise<void> {
    if (this.config.bindings) await this.readBindings();
    else this.configTargets();
    for (const target of this.targets.values()) {
      try {
        await this.readTarget(target);
      } catch (error) {
        this.options.log.warn(
          `kubernetes: cannot read ${target.ref.kind}/${target.ref.name}: ${describe(error)}`,
        );
      }
    }
    const live = new Set(this.targets.keys());
    for (const worker of this.options.registry.live())
      if (!live.has(worker.pool)) this.options.registry.remove(worker.id, "target gone");
  }

  private configTargets(): void {
    const { config } = this.options.loaded;
    const targets = new Map<string, PoolTarget>();
    const plans = new Map<string, PoolPlan>();
    for (const [pool, target] of Object.entries(this.config.targets)) {
      const poolConfig = config.pools[pool] ?? {
        role: "mixed" as const,
        min: 1,
        max: 4,
        startup_delay_s: 60,
      };
      const previous = this.targets.get(pool);
      targets.set(pool, {
        pool,
        ref: { apiVersion: target.api_version, kind: target.kind, name: target.name },
        min: poolConfig.min,
        max: poolConfig.max,
        replicas: previous?.replicas,
        selector: previous?.selector,
        selectorWarned: previous?.selectorWarned ?? false,
      });
      plans.set(pool, {
        name: pool,
        role: poolConfig.role,
        min: poolConfig.min,
        max: poolConfig.max,
        capacity: poolCapacityFor(config, this.options.hardware, poolConfig),
      });
    }
    this.targets = targets;
    this.plans = plans;
    const context: PolicyContext = {
      source: this.options.loaded.source,
      pools: [...plans.values()].map((plan) => ({
        name: plan.name,
        role: plan.role,
        capacity: plan.capacity,
        latency: this.options.hardware.perf,
      })),
    };
    const autoscaling = config.autoscaling;
    this.unitSpecs =
      plans.size === 0
        ? []
        : [
            {
              name: "default",
              fingerprint: fingerprintOf(
                autoscaling.policy,
                autoscaling.policy_config,
                autoscaling.policy_file,
                [...plans.keys()],
              ),
              pools: [...plans.keys()],
              build: () => this.options.buildPolicy(context),
            },
          ];
  }

  /** Lists a custom resource in every configured group (a group whose CRD is absent is skipped). */
  private async listCustom(plural: string): Promise<K8sObject[]> {
    const items: K8sObject[] = [];
    for (const group of this.config.crd_groups) {
      const key = `${group}/${plural}`;
      try {
        const list = (await this.custom.listNamespacedCustomObject({
          group,
          version: this.config.crd_version,
          namespace: this.namespace,
          plural,
        })) as { items?: K8sObject[] };
        this.missingGroups.delete(key);
        items.push(...(list.items ?? []));
      } catch (error) {
        if (statusOf(error) === 404) {
          if (!this.missingGroups.has(key))
            this.options.log.info(`kubernetes: no ${plural}.${group} resources (CRD not installed?)`);
          this.missingGroups.add(key);
          continue;
        }
        throw error;
      }
    }
    return items;
  }

  private async readBindings(): Promise<void> {
    let bindings: K8sObject[];
    let policies: K8sObject[];
    try {
      bindings = await this.listCustom("autoscalingpolicybindings");
      policies = await this.listCustom("autoscalingpolicies");
    } catch (error) {
      this.options.log.warn(
        `kubernetes: cannot list autoscaling resources (keeping the last ones): ${describe(error)}`,
      );
      return;
    }
    const { config } = this.options.loaded;
    const policyByName = new Map(policies.map((policy) => [policy.metadata?.name ?? "", policy]));
    const targets = new Map<string, PoolTarget>();
    const plans = new Map<string, PoolPlan>();
    const units: UnitSpec[] = [];
    const clean = (object: K8sObject): K8sObject => ({
      apiVersion: object.apiVersion ?? `${this.config.crd_groups[0]}/${this.config.crd_version}`,
      kind: object.kind ?? "",
      metadata: { name: object.metadata?.name ?? "" },
      ...(object.spec === undefined ? {} : { spec: object.spec }),
    });
    const sources: { unit: string; documents: K8sObject[]; spec: Record<string, unknown> | undefined }[] = [];
    for (const binding of bindings) {
      const name = binding.metadata?.name ?? "?";
      const refName = (binding.spec?.policyRef as { name?: string } | undefined)?.name;
      const policy = refName === undefined ? undefined : policyByName.get(refName);
      if (refName !== undefined && policy === undefined) {
        this.options.log.warn(
          `kubernetes: binding ${name} references AutoscalingPolicy ${refName}, which does not exist; skipped`,
        );
        continue;
      }
      sources.push({
        unit: `binding/${name}`,
        documents: [...(policy === undefined ? [] : [clean(policy)]), clean(binding)],
        spec: binding.spec,
      });
    }
    // HEAD-style: a standalone policy with its own target.
    for (const policy of policies) {
      if (policy.spec?.homogeneousTarget === undefined) continue;
      sources.push({
        unit: `policy/${policy.metadata?.name ?? "?"}`,
        documents: [clean(policy)],
        spec: policy.spec,
      });
    }
    for (const source of sources) {
      const target = targetRefOf(source.spec);
      if (target === undefined) {
        this.options.log.warn(
          `kubernetes: ${source.unit}: only homogeneous targets (scalingConfiguration / homogeneousTarget) are supported here; skipped`,
        );
        continue;
      }
      const pool = target.ref.name;
      if (targets.has(pool)) {
        this.options.log.warn(
          `kubernetes: ${source.unit}: ${pool} is already scaled by another binding; skipped`,
        );
        continue;
      }
      const text = source.documents.map((doc) => stringify(doc)).join("---\n");
      const where = `${this.namespace}/${source.unit}`;
      const docName = source.documents[source.documents.length - 1]!.metadata?.name ?? "";
      // Validate now: a broken resource is reported and skipped, never crashes the controller.
      try {
        createKthenaPolicy(loadKthenaPolicyText(text, where, { target: docName }), [
          { name: pool, role: "mixed" },
        ]);
      } catch (error) {
        const message = error instanceof UsageError || error instanceof Error ? error.message : String(error);
        this.options.log.warn(`kubernetes: ${source.unit} is invalid; skipped: ${message}`);
        continue;
      }
      const previous = this.targets.get(pool);
      const sameRef =
        previous !== undefined &&
        previous.ref.kind === target.ref.kind &&
        previous.ref.name === target.ref.name &&
        previous.ref.apiVersion === target.ref.apiVersion;
      targets.set(pool, {
        pool,
        ref: target.ref,
        min: target.min,
        max: target.max,
        replicas: sameRef ? previous.replicas : undefined,
        selector: sameRef ? previous.selector : undefined,
        selectorWarned: sameRef ? previous.selectorWarned : false,
      });
      const poolConfig = config.pools[pool] ?? { startup_delay_s: 60 };
      plans.set(pool, {
        name: pool,
        role: "mixed",
        min: target.min,
        max: target.max,
        capacity: poolCapacityFor(config, this.options.hardware, poolConfig),
      });
      units.push({
        name: source.unit,
        fingerprint: fingerprintOf(source.documents.map((doc) => doc.spec)),
        pools: [pool],
        build: () =>
          createKthenaPolicy(loadKthenaPolicyText(text, where, { target: docName }), [
            { name: pool, role: "mixed" },
          ]),
      });
    }
    this.targets = targets;
    this.plans = plans;
    this.unitSpecs = units;
  }

  private scaleApi(ref: TargetRef): {
    read: () => Promise<V1Scale>;
    patch: (replicas: number) => Promise<V1Scale>;
  } {
    const namespace = this.namespace;
    const name = ref.name;
    const body = (replicas: number) => ({ spec: { replicas } });
    if (ref.kind === "Deployment")
      return {
        read: () => this.apps.readNamespacedDeploymentScale({ name, namespace }),
        patch: (replicas) =>
          this.apps.patchNamespacedDeploymentScale({ name, namespace, body: body(replicas) }, mergePatch),
      };
    if (ref.kind === "StatefulSet")
      return {
        read: () => this.apps.readNamespacedStatefulSetScale({ name, namespace }),
        patch: (replicas) =>
          this.apps.patchNamespacedStatefulSetScale({ name, namespace, body: body(replicas) }, mergePatch),
      };
    const { group, version } = splitApiVersion(ref.apiVersion);
    const plural = this.config.plurals[ref.kind] ?? `${ref.kind.toLowerCase()}s`;
    return {
      read: async () =>
        (await this.custom.getNamespacedCustomObjectScale({
          group,
          version,
          namespace,
          plural,
          name,
        })) as V1Scale,
      patch: async (replicas) =>
        (await this.custom.patchNamespacedCustomObjectScale(
          { group, version, namespace, plural, name, body: body(replicas) },
          mergePatch,
        )) as V1Scale,
    };
  }

  private async readTarget(target: PoolTarget): Promise<void> {
    const scale = await this.scaleApi(target.ref).read();
    target.replicas = scale.spec?.replicas ?? 0;
    target.selector = scale.status?.selector ?? target.selector;
    if (target.selector === undefined || target.selector === "") {
      if (!target.selectorWarned)
        this.options.log.warn(
          `kubernetes: ${target.ref.kind}/${target.ref.name}: its scale subresource has no status.selector; its pods cannot be found`,
        );
      target.selectorWarned = true;
      return;
    }
    const pods = await this.core.listNamespacedPod({
      namespace: this.namespace,
      labelSelector: target.selector,
    });
    this.syncPods(target.pool, pods.items);
  }

  private syncPods(pool: string, pods: readonly V1Pod[]): void {
    const { registry } = this.options;
    const metricsConfig = this.config.metrics;
    const seen = new Set<string>();
    for (const pod of pods) {
      const name = pod.metadata?.name;
      if (name === undefined) continue;
      const podPhase = pod.status?.phase;
      if (podPhase === "Succeeded" || podPhase === "Failed") continue;
      seen.add(name);
      const annotations = pod.metadata?.annotations ?? {};
      const ready = pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
      const phase =
        pod.metadata?.deletionTimestamp !== undefined
          ? "draining"
          : podPhase === "Running" && ready
            ? "ready"
            : "starting";
      const ip = pod.status?.podIP;
      const servePort = Number(annotations["splitscale.io/port"] ?? metricsConfig.port);
      const metricsPort = Number(
        annotations["splitscale.io/metrics-port"] ?? annotations["prometheus.io/port"] ?? servePort,
      );
      const path = annotations["prometheus.io/path"] ?? metricsConfig.path;
      const host = ip === undefined ? undefined : ip.includes(":") ? `[${ip}]` : ip;
      const url = host === undefined ? undefined : `${metricsConfig.scheme}://${host}:${servePort}`;
      if (host !== undefined)
        this.metricsUrls.set(name, `${metricsConfig.scheme}://${host}:${metricsPort}${path}`);
      const restarts = (pod.status?.containerStatuses ?? []).reduce(
        (sum, c) => sum + (c.restartCount ?? 0),
        0,
      );
      let worker = registry.get(name);
      if (worker === undefined) {
        const created = pod.metadata?.creationTimestamp;
        worker = registry.add({
          id: name,
          pool,
          url,
          phase,
          note: `pod ${podPhase ?? "?"}`,
          ...(created === undefined ? {} : { createdAtMs: new Date(created).getTime() }),
        });
      } else {
        worker.url = url;
        registry.setPhase(name, phase, `pod ${podPhase ?? "?"}${ready ? "" : " (not ready)"}`);
      }
      worker.restarts = restarts;
    }
    for (const worker of registry.live(pool)) {
      if (seen.has(worker.id)) continue;
      registry.remove(worker.id, "pod gone");
      this.metricsUrls.delete(worker.id);
    }
  }

  desired(pool: string): number {
    const target = this.targets.get(pool);
    if (target?.replicas !== undefined) return target.replicas;
    return this.options.registry.live(pool).filter((w) => w.phase === "starting" || w.phase === "ready")
      .length;
  }

  metricsUrl(worker: Worker): string | undefined {
    return this.metricsUrls.get(worker.id);
  }

  async reconcile(
    pool: string,
    targetReplicas: number,
    victims: readonly string[],
    reason: string,
  ): Promise<number> {
    const target = this.targets.get(pool);
    if (target === undefined) throw new Error(`no scale target for pool ${pool}`);
    const current = this.desired(pool);
    if (targetReplicas === current) return current;
    if (targetReplicas < current && target.ref.kind === "Deployment") {
      for (const victim of victims.slice(0, current - targetReplicas)) {
        try {
          await this.core.patchNamespacedPod(
            {
              name: victim,
              namespace: this.namespace,
              body: { metadata: { annotations: { [DELETION_COST_ANNOTATION]: "-1000" } } },
            },
            mergePatch,
          );
        } catch (error) {
          this.options.log.warn(
            `kubernetes: cannot mark pod ${victim} for deletion first: ${describe(error)}`,
          );
        }
      }
    }
    await this.scaleApi(target.ref).patch(targetReplicas);
    this.options.log.info(
      `kubernetes: ${target.ref.kind}/${target.ref.name} replicas ${current} → ${targetReplicas} (${reason.slice(0, 200)})`,
    );
    target.replicas = targetReplicas;
    return targetReplicas;
  }

  /** Policy state in a ConfigMap (`state_configmap`), written only when it changed. */
  stateStore(): StateStore {
    const name = this.config.state_configmap;
    const namespace = this.namespace;
    return {
      load: async () => {
        try {
          const map = await this.core.readNamespacedConfigMap({ name, namespace });
          this.stateExists = true;
          const text = map.data?.[STATE_KEY];
          if (text === undefined) return {};
          const parsed = decodeState(text) as {
            units?: Record<string, { fingerprint: string; state: unknown }>;
          };
          this.lastSavedState = undefined;
          return parsed.units ?? {};
        } catch (error) {
          if (statusOf(error) === 404) {
            this.stateExists = false;
            return {};
          }
          throw error;
        }
      },
      save: async (units, decisions: readonly DecisionRecord[]) => {
        const unitsText = encodeState(units);
        if (unitsText === this.lastSavedState) return;
        const body = {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name, namespace, labels: { "app.kubernetes.io/managed-by": "splitscale" } },
          data: {
            [STATE_KEY]: encodeState({ version: 1, saved_at: new Date().toISOString(), units }),
            "decisions.json": JSON.stringify(decisions),
          },
        };
        if (this.stateExists === true) {
          try {
            await this.core.replaceNamespacedConfigMap({ name, namespace, body });
          } catch (error) {
            if (statusOf(error) !== 404) throw error;
            await this.core.createNamespacedConfigMap({ namespace, body });
          }
        } else {
          try {
            await this.core.createNamespacedConfigMap({ namespace, body });
          } catch (error) {
            if (statusOf(error) !== 409) throw error;
            await this.core.replaceNamespacedConfigMap({ name, namespace, body });
          }
        }
        this.stateExists = true;
        this.lastSavedState = unitsText;
      },
    };
  }

  async close(): Promise<void> {
    // Nothing runs here: the workloads stay at their current size, as with any controller that stops.
    await this.refreshing?.catch(() => undefined);
  }
}
