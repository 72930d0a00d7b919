/**
 * A small fake Kubernetes API server (node:http) implementing exactly the endpoints the kubernetes
 * actuator uses, with enough behaviour to drive it: workloads with a scale subresource whose
 * replica count creates and deletes pods (lowest pod-deletion-cost first), custom resources, pods
 * by label selector, ConfigMaps. Every request is recorded so tests can check methods, paths and
 * content types. Not a real API server: no watch, no RBAC, no admission webhooks.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly contentType: string | undefined;
  readonly body: unknown;
}

export interface FakeWorkload {
  readonly kind: string;
  readonly name: string;
  replicas: number;
  readonly labels: Record<string, string>;
  /** Annotations every new pod gets (e.g. its metrics port). */
  readonly podAnnotations: (index: number) => Record<string, string>;
  /** Whether new pods are Running and Ready at once. */
  podsReady: boolean;
}

interface Pod {
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    creationTimestamp: string;
    deletionTimestamp?: string;
  };
  status: {
    phase: string;
    podIP: string;
    conditions: { type: string; status: string }[];
    containerStatuses: { name: string; restartCount: number }[];
  };
  owner: string;
}

export class FakeKube {
  readonly requests: RecordedRequest[] = [];
  readonly workloads = new Map<string, FakeWorkload>();
  readonly customObjects = new Map<string, Record<string, unknown>[]>();
  readonly configMaps = new Map<
    string,
    { metadata: Record<string, unknown>; data: Record<string, string> }
  >();
  readonly pods: Pod[] = [];
  /** Group/plural pairs answering 404 (CRD not installed). */
  readonly missingPlurals = new Set<string>();
  private server: Server | undefined;
  private podCounter = 0;
  url = "";

  constructor(readonly namespace = "default") {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (this.server === undefined) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  addWorkload(workload: FakeWorkload): void {
    this.workloads.set(`${workload.kind}/${workload.name}`, workload);
    this.reconcilePods(workload);
  }

  addCustomObject(group: string, version: string, plural: string, object: Record<string, unknown>): void {
    const key = `${group}/${version}/${plural}`;
    const list = this.customObjects.get(key) ?? [];
    list.push({
      ...object,
      metadata: { namespace: this.namespace, resourceVersion: "1", ...(object.metadata as object) },
    });
    this.customObjects.set(key, list);
  }

  podsOf(workload: string): Pod[] {
    return this.pods.filter((pod) => pod.owner === workload);
  }

  /** Writes, as (method, path) pairs, optionally filtered by a path fragment. */
  writes(fragment = ""): RecordedRequest[] {
    return this.requests.filter((r) => r.method !== "GET" && r.path.includes(fragment));
  }

  private reconcilePods(workload: FakeWorkload): void {
    const key = `${workload.kind}/${workload.name}`;
    const mine = this.podsOf(key);
    while (mine.length < workload.replicas) {
      const index = this.podCounter++;
      const pod: Pod = {
        metadata: {
          name: `${workload.name}-${index}`,
          namespace: this.namespace,
          labels: { ...workload.labels },
          annotations: workload.podAnnotations(index),
          creationTimestamp: new Date().toISOString(),
        },
        status: {
          phase: workload.podsReady ? "Running" : "Pending",
          podIP: "127.0.0.1",
          conditions: [{ type: "Ready", status: workload.podsReady ? "True" : "False" }],
          containerStatuses: [{ name: "engine", restartCount: 0 }],
        },
        owner: key,
      };
      this.pods.push(pod);
      mine.push(pod);
    }
    if (mine.length > workload.replicas) {
      // As a ReplicaSet: lowest controller.kubernetes.io/pod-deletion-cost first, then the newest.
      const cost = (pod: Pod): number =>
        Number(pod.metadata.annotations["controller.kubernetes.io/pod-deletion-cost"] ?? 0);
      const order = [...mine].sort(
        (a, b) =>
          cost(a) - cost(b) ||
          b.metadata.creationTimestamp.localeCompare(a.metadata.creationTimestamp) ||
          b.metadata.name.localeCompare(a.metadata.name),
      );
      for (const pod of order.slice(0, mine.length - workload.replicas))
        this.pods.splice(this.pods.indexOf(pod), 1);
    }
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }

  private notFound(res: ServerResponse, what: string): void {
    this.send(res, 404, {
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      message: `${what} not found`,
      reason: "NotFound",
      code: 404,
    });
  }

  private scaleOf(workload: FakeWorkload): unknown {
    const selector = Object.entries(workload.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    return {
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: { name: workload.name, namespace: this.namespace },
      spec: { replicas: workload.replicas },
      status: { replicas: this.podsOf(`${workload.kind}/${workload.name}`).length, selector },
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    const path = url.pathname;
    this.requests.push({
      method: req.method ?? "GET",
      path,
      query: Object.fromEntries(url.searchParams.entries()),
      contentType: req.headers["content-type"],
      body,
    });
    const ns = this.namespace;
    let match: RegExpExecArray | null;

    // Scale subresource of apps/v1 workloads.
    if (
      (match = new RegExp(`^/apis/apps/v1/namespaces/${ns}/(deployments|statefulsets)/([^/]+)/scale$`).exec(
        path,
      ))
    ) {
      const kind = match[1] === "deployments" ? "Deployment" : "StatefulSet";
      const workload = this.workloads.get(`${kind}/${match[2]}`);
      if (workload === undefined) return this.notFound(res, `${kind} ${match[2]}`);
      return this.scaleRequest(req, res, workload, body);
    }
    // Custom resources: list, and the scale subresource of custom workloads.
    if ((match = new RegExp(`^/apis/([^/]+)/([^/]+)/namespaces/${ns}/([^/]+)/([^/]+)/scale$`).exec(path))) {
      const [, , , plural, name] = match;
      const kind = plural === "modelinfers" ? "ModelInfer" : plural!;
      const workload = this.workloads.get(`${kind}/${name}`);
      if (workload === undefined) return this.notFound(res, `${plural} ${name}`);
      return this.scaleRequest(req, res, workload, body);
    }
    if (
      (match = new RegExp(`^/apis/([^/]+)/([^/]+)/namespaces/${ns}/([^/]+)$`).exec(path)) &&
      req.method === "GET"
    ) {
      const [, group, version, plural] = match;
      if (this.missingPlurals.has(`${group}/${plural}`)) return this.notFound(res, `${plural}.${group}`);
      const items = this.customObjects.get(`${group}/${version}/${plural}`);
      if (items === undefined) return this.notFound(res, `${plural}.${group}`);
      return this.send(res, 200, {
        apiVersion: `${group}/${version}`,
        kind: "List",
        metadata: { resourceVersion: "1" },
        items,
      });
    }
    // Pods.
    if (path === `/api/v1/namespaces/${ns}/pods` && req.method === "GET") {
      const selector = url.searchParams.get("labelSelector") ?? "";
      const wanted = selector
        .split(",")
        .filter((part) => part !== "")
        .map((part) => part.split("=") as [string, string]);
      const items = this.pods
        .filter((pod) => wanted.every(([k, v]) => pod.metadata.labels[k] === v))
        .map(({ owner: _owner, ...pod }) => pod);
      return this.send(res, 200, {
        apiVersion: "v1",
        kind: "PodList",
        metadata: { resourceVersion: "1" },
        items,
      });
    }
    if (
      (match = new RegExp(`^/api/v1/namespaces/${ns}/pods/([^/]+)$`).exec(path)) &&
      req.method === "PATCH"
    ) {
      const pod = this.pods.find((p) => p.metadata.name === match![1]);
      if (pod === undefined) return this.notFound(res, `pod ${match[1]}`);
      const patch = body as { metadata?: { annotations?: Record<string, string> } };
      Object.assign(pod.metadata.annotations, patch.metadata?.annotations ?? {});
      const { owner: _owner, ...out } = pod;
      return this.send(res, 200, out);
    }
    // ConfigMaps.
    if ((match = new RegExp(`^/api/v1/namespaces/${ns}/configmaps(?:/([^/]+))?$`).exec(path))) {
      const name = match[1];
      if (req.method === "GET" && name !== undefined) {
        const map = this.configMaps.get(name);
        return map === undefined
          ? this.notFound(res, `configmap ${name}`)
          : this.send(res, 200, { apiVersion: "v1", kind: "ConfigMap", ...map });
      }
      const object = body as {
        metadata: Record<string, unknown> & { name: string };
        data: Record<string, string>;
      };
      if (req.method === "POST" && name === undefined) {
        if (this.configMaps.has(object.metadata.name))
          return this.send(res, 409, {
            kind: "Status",
            code: 409,
            reason: "AlreadyExists",
            message: "exists",
          });
        this.configMaps.set(object.metadata.name, { metadata: object.metadata, data: object.data });
        return this.send(res, 201, { apiVersion: "v1", kind: "ConfigMap", ...object });
      }
      if (req.method === "PUT" && name !== undefined) {
        if (!this.configMaps.has(name)) return this.notFound(res, `configmap ${name}`);
        this.configMaps.set(name, { metadata: object.metadata, data: object.data });
        return this.send(res, 200, { apiVersion: "v1", kind: "ConfigMap", ...object });
      }
    }
    return this.notFound(res, `${req.method} ${path}`);
  }

  private scaleRequest(
    req: IncomingMessage,
    res: ServerResponse,
    workload: FakeWorkload,
    body: unknown,
  ): void {
    if (req.method === "GET") return this.send(res, 200, this.scaleOf(workload));
    if (req.method === "PATCH") {
      if (req.headers["content-type"] !== "application/merge-patch+json")
        return this.send(res, 415, {
          kind: "Status",
          code: 415,
          message: `unsupported patch type ${req.headers["content-type"]}`,
        });
      const replicas = (body as { spec?: { replicas?: unknown } }).spec?.replicas;
      if (typeof replicas !== "number")
        return this.send(res, 422, { kind: "Status", code: 422, message: "spec.replicas must be a number" });
      workload.replicas = replicas;
      this.reconcilePods(workload);
      return this.send(res, 200, this.scaleOf(workload));
    }
    return this.send(res, 405, { kind: "Status", code: 405 });
  }
}
