import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { backendSchema, catalogSchema } from "../../lib/catalog/index.js";

const KUBECTL = process.env.KUBECTL ?? "/usr/bin/kubectl";
const HAS_KUBECTL = existsSync(KUBECTL);
const SERVICES = ["edge", "auth", "router", "tokenizer", "model-shard"];

interface Container {
  name: string;
  env?: {
    name: string;
    value?: string;
    valueFrom?: { configMapKeyRef?: { name: string; key: string }; secretKeyRef?: { name: string; key: string; optional?: boolean } };
  }[];
  readinessProbe?: Record<string, unknown>;
  livenessProbe?: Record<string, unknown>;
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: Record<string, unknown>;
}
interface Resource {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, any>;
  data?: Record<string, string>;
}

/** Renders an overlay with `kubectl kustomize` (offline) into objects. */
function render(dir: string): Resource[] {
  const out = execFileSync(KUBECTL, ["kustomize", dir], { encoding: "utf8" });
  return parseAllDocuments(out)
    .map((d) => d.toJSON() as Resource)
    .filter(Boolean);
}

function containersOf(workload: Resource): Container[] {
  return workload.spec!.template.spec.containers as Container[];
}

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

describe.skipIf(!HAS_KUBECTL)(`deploy/ rendered with kubectl kustomize (skipped when ${KUBECTL} is missing)`, () => {
  const dev = HAS_KUBECTL ? render("deploy/overlays/dev") : [];
  const deployments = dev.filter((r) => r.kind === "Deployment");
  const services = dev.filter((r) => r.kind === "Service");

  it("has a Deployment for every mesh service, each in the dev namespace", () => {
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual([...SERVICES].sort());
    for (const r of dev) expect(r.metadata.namespace, `${r.kind}/${r.metadata.name}`).toBe("llm-mesh-dev");
  });

  it("gives every Deployment's containers readiness and liveness probes, resource requests and a non-root user", () => {
    for (const d of deployments) {
      expect(d.spec!.template.spec.securityContext?.runAsNonRoot, d.metadata.name).toBe(true);
      for (const c of containersOf(d)) {
        const where = `${d.metadata.name}/${c.name}`;
        expect(c.readinessProbe, `${where} readiness`).toBeDefined();
        expect(c.livenessProbe, `${where} liveness`).toBeDefined();
        expect(Object.keys(c.resources?.requests ?? {}), `${where} requests`).toEqual(expect.arrayContaining(["cpu", "memory"]));
        expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
      }
    }
  });

  it("probes the gRPC services with native grpc probes and the edge's readiness with /healthz", () => {
    for (const d of deployments) {
      const [c] = containersOf(d);
      const port = Number(c.env!.find((e) => e.name === "PORT")!.value);
      expect((c.livenessProbe!.grpc as { port: number }).port, d.metadata.name).toBe(port);
      if (d.metadata.name === "edge") expect(c.readinessProbe!.httpGet).toMatchObject({ path: "/healthz" });
      else expect((c.readinessProbe!.grpc as { port: number }).port, d.metadata.name).toBe(port);
    }
  });

  it("puts a Service in front of every Deployment, selecting its pods on a declared port", () => {
    for (const d of deployments) {
      const labels = d.spec!.template.metadata.labels as Record<string, string>;
      const svc = services.find((s) => s.metadata.name === d.metadata.name);
      expect(svc, `Service ${d.metadata.name}`).toBeDefined();
      expect(selects(svc!.spec!.selector, labels), `${d.metadata.name} selector`).toBe(true);
      const containerPorts = containersOf(d).flatMap((c: any) => (c.ports ?? []).map((p: { name: string }) => p.name));
      for (const p of svc!.spec!.ports) expect(containerPorts, `${d.metadata.name} port ${p.name}`).toContain(p.targetPort);
    }
  });

  it("points every address in the environment and the catalog at a Service and port that exist", () => {
    const ports = new Map(services.map((s) => [s.metadata.name, s.spec!.ports.map((p: { port: number }) => p.port) as number[]]));
    const headless = new Set(services.filter((s) => s.spec!.clusterIP === "None").map((s) => s.metadata.name));
    const resolves = (address: string): boolean => {
      const [host, port] = address.replace(/^(nats|dns):\/\/\/?/, "").split(":");
      // A dns:/// target names a headless Service, so it resolves to every pod (one replica each).
      if (address.startsWith("dns:///") && !headless.has(host)) return false;
      return ports.get(host)?.includes(Number(port)) ?? false;
    };
    const catalogMap = dev.find((r) => r.kind === "ConfigMap" && r.metadata.name.startsWith("mesh-catalog"))!;
    const catalog = catalogSchema.parse(JSON.parse(catalogMap.data!["catalog.json"]));
    backendSchema.parse(JSON.parse(catalogMap.data!["shard-backend.json"]));
    for (const b of catalog.models.flatMap((m) => m.backends)) for (const a of b.addresses ?? []) expect(resolves(a), a).toBe(true);
    expect(catalog.models.flatMap((m) => m.backends).flatMap((b) => b.addresses ?? [])).toContain("dns:///model-shard:50051");
    for (const d of deployments) {
      for (const e of containersOf(d).flatMap((c) => c.env ?? [])) {
        if (/_ADDR$|^MESH_NATS_URL$/.test(e.name)) expect(resolves(e.value!), `${d.metadata.name} ${e.name}=${e.value}`).toBe(true);
        const ref = e.valueFrom?.configMapKeyRef;
        if (ref) expect(dev.find((r) => r.kind === "ConfigMap" && r.metadata.name === ref.name)?.data?.[ref.key], `${ref.name}/${ref.key}`).toBeDefined();
      }
    }
  });

  it("runs every service with `llm-mesh serve <service>`, and shards and routers in cluster mode on NATS", () => {
    const serveName: Record<string, string> = { "model-shard": "shard" };
    for (const d of deployments) {
      const [c] = containersOf(d) as (Container & { command?: string[] })[];
      expect(c.command, d.metadata.name).toEqual(["node", "bin/llm-mesh.js", "serve", serveName[d.metadata.name] ?? d.metadata.name]);
    }
    for (const name of ["router", "model-shard"]) {
      const env = Object.fromEntries(containersOf(deployments.find((d) => d.metadata.name === name)!)[0].env!.map((e) => [e.name, e.value]));
      expect(env.MESH_NATS_URL, name).toBe("nats://nats:4222");
    }
  });

  it("runs auth on NATS JetStream with as many replicas as the NATS StatefulSet has nodes", () => {
    const env = Object.fromEntries(containersOf(deployments.find((d) => d.metadata.name === "auth")!)[0].env!.map((e) => [e.name, e.value]));
    expect(env.MESH_STORE).toBe("nats");
    const nats = dev.find((r) => r.kind === "StatefulSet" && r.metadata.name === "nats")!;
    expect(Number(env.MESH_NATS_REPLICAS)).toBe(nats.spec!.replicas);
    expect(render("deploy/base").find((r) => r.kind === "StatefulSet")!.spec!.replicas).toBe(3);
  });

  it("gives every service the service token from the Secret mesh-service, required", () => {
    for (const d of deployments) {
      const env = containersOf(d)[0].env!.find((e) => e.name === "MESH_SERVICE_TOKEN");
      expect(env?.valueFrom?.secretKeyRef, d.metadata.name).toEqual({ name: "mesh-service", key: "token" });
    }
  });

  it("denies ingress by default and lets each internal service be reached only by its callers", () => {
    const policies = dev.filter((r) => r.kind === "NetworkPolicy");
    const deny = policies.find((p) => Object.keys(p.spec!.podSelector).length === 0);
    expect(deny?.spec!.policyTypes).toEqual(["Ingress"]);
    expect(deny?.spec!.ingress).toBeUndefined();
    const callers = (name: string, port: string): string[] => {
      const policy = policies.find((p) => p.spec!.podSelector.matchLabels?.["app.kubernetes.io/name"] === name);
      const rules = (policy?.spec!.ingress ?? []) as { from?: { podSelector?: { matchLabels: Record<string, string> } }[]; ports: { port: string }[] }[];
      return rules
        .filter((r) => r.ports.some((p) => p.port === port))
        .flatMap((r) => (r.from ? r.from.map((f) => f.podSelector?.matchLabels["app.kubernetes.io/name"] ?? "*") : ["*"]));
    };
    expect(callers("edge", "http")).toEqual(["*"]);
    // Routers: added models (WatchModels) and rate-limit admission on the exact prompt count.
    expect(callers("auth", "grpc")).toEqual(["edge", "router"]);
    expect(callers("router", "grpc")).toEqual(["edge"]);
    expect(callers("tokenizer", "grpc")).toEqual(["router"]);
    expect(callers("model-shard", "grpc")).toEqual(["router"]);
    expect(callers("nats", "client")).toEqual(["auth", "router", "model-shard"]);
  });

  it("gives the gpu overlay's shard an NVIDIA GPU and a CUDA backend", () => {
    const gpu = render("deploy/overlays/gpu");
    const shard = gpu.find((r) => r.kind === "Deployment" && r.metadata.name === "model-shard")!;
    const [c] = containersOf(shard);
    expect(c.resources!.limits!["nvidia.com/gpu"]).toBe(1);
    const catalogMap = gpu.find((r) => r.kind === "ConfigMap" && r.metadata.name.startsWith("mesh-catalog"))!;
    const backend = backendSchema.parse(JSON.parse(catalogMap.data!["shard-backend.json"]));
    expect(backend).toMatchObject({ engine: "llama.cpp", gpu: "cuda" });
    const model = c.env!.find((e) => e.name === "MESH_SHARD_MODEL")!.value;
    expect(catalogSchema.parse(JSON.parse(catalogMap.data!["catalog.json"])).models.map((m) => m.name)).toContain(model);
  });
});

describe("deploy/Dockerfile", () => {
  const dockerfile = readFileSync("deploy/Dockerfile", "utf8");

  it("builds in one node:20-slim stage with npm ci and runs from another as a non-root user", () => {
    expect(dockerfile.match(/^FROM node:20-slim/gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^RUN npm ci/m);
    expect(dockerfile).toMatch(/npx tsc -p tsconfig\.json/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(readFileSync(".dockerignore", "utf8")).toMatch(/^node_modules$/m);
  });

  it("puts llama.cpp's own server, built from the source node-llama-cpp ships, where the llama-server runtime finds it", () => {
    expect(dockerfile).toMatch(/git clone --quiet \/llama\/gitRelease\.bundle/);
    expect(dockerfile).toMatch(/--target llama-server/);
    expect(dockerfile).toMatch(/LLAMA_SERVER_BIN=\/usr\/local\/bin\/llama-server/);
    expect(dockerfile).toMatch(/^COPY --from=llama-server \/src\/build\/bin\/llama-server \/usr\/local\/bin\/llama-server$/m);
  });
});
