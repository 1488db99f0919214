/**
 * Runs the real program (index.ts) under Pulumi's mock runtime and records every
 * resource registration with its parent and resolved inputs. Used by the offline plan
 * and by tests; Pulumi's runtime is process-global, so call it once per process.
 */
// First: it decides how the SDK's heavy, unused modules load.
import "./lazy-sdk";
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import path from "node:path";
import { SECRET_PLACEHOLDER, type StackConfig } from "./config";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  /** Name of the parent resource, or null for the stack's direct children. */
  readonly parent: string | null;
  readonly custom: boolean;
  /** Resolved inputs, with every secret value replaced by "[secret]". */
  readonly inputs: Record<string, unknown>;
  /** Names of resources this one explicitly depends on. */
  readonly dependsOn: string[];
  /** The `import` ID, when the resource is adopted rather than created. */
  readonly importId: string | null;
  /** Input names whose change replaces the resource rather than updating it. */
  readonly replaceOnChanges: string[];
  /**
   * Where a remote command connects: its `connection` without the credentials. The SDK
   * makes the whole connection secret (so `inputs` shows "[secret]"); host, port, user
   * and the pinned host key are not, and tests check them here.
   */
  readonly sshTarget: SshTargetRecord | null;
  /**
   * A component's outputs as its `registerOutputs` set them (secrets redacted): what the
   * engine records for it, and what a stack policy sees. Null until then, and for
   * custom resources.
   */
  outputs: Record<string, unknown> | null;
}

export interface SshTargetRecord {
  readonly host: unknown;
  readonly port: unknown;
  readonly user: unknown;
  readonly hostKey: unknown;
}

/** The marker Pulumi's RPC layer puts on a secret value (sdk/nodejs/runtime/rpc.ts). */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** Replaces secret values (and only those) with the placeholder, recursively. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SECRET_SIG] === SECRET_VALUE_SIG) return SECRET_PLACEHOLDER;
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, redactSecrets(v)]));
  }
  return value;
}

/** A connection's non-secret fields, looked up inside the secret the SDK wraps it in. */
function sshTargetOf(inputs: Record<string, unknown>): SshTargetRecord | null {
  let connection = inputs.connection as Record<string, unknown> | undefined;
  if (connection && connection[SECRET_SIG] === SECRET_VALUE_SIG) connection = connection.value as Record<string, unknown>;
  if (!connection || typeof connection !== "object") return null;
  const plain = (v: unknown) => (v !== null && typeof v === "object" ? SECRET_PLACEHOLDER : (v ?? null));
  return {
    host: plain(connection.host),
    port: plain(connection.port),
    user: plain(connection.user),
    hostKey: plain(connection.hostKey),
  };
}

function nameFromUrn(urn: string): string | null {
  if (!urn) return null;
  const name = urn.slice(urn.lastIndexOf("::") + 2);
  // The stack resource is not a parent anyone wrote.
  return urn.includes("::pulumi:pulumi:Stack::") && !urn.includes("$") ? null : name;
}

/**
 * Outputs the providers would compute, faked deterministically (never real secrets).
 * Only the outputs the program reads: echoing every input back as state would make
 * the mock monitor keep a second serialized copy of every file's content.
 */
function fakeOutputs(type: string): Record<string, unknown> {
  switch (type) {
    case "cloudflare:index/apiToken:ApiToken":
      return { value: SECRET_PLACEHOLDER };
    case "random:index/randomPassword:RandomPassword":
      return { result: SECRET_PLACEHOLDER };
    default:
      return {};
  }
}

const mocks: pulumi.runtime.Mocks = {
  newResource: (args) => ({ id: `${args.name}-id`, state: fakeOutputs(args.type) }),
  call: (args) => {
    throw new Error(`unexpected provider function call ${args.token}: the program must not depend on live lookups offline`);
  },
};

/**
 * Records every registration the mock monitor receives, with what MockResourceArgs
 * leaves out (parent, dependencies, import ID). It wraps the monitor setMocks made
 * rather than installing another: setMockOptions would reset the runtime's secret
 * support, and secrets would then be serialized in clear text.
 */
function record(monitor: MockMonitor, into: RecordedResource[]): void {
  const register = monitor.registerResource.bind(monitor);
  const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
  const byUrn = new Map<string, RecordedResource>();
  monitor.registerResource = (req: any, callback: (err: any, res: any) => void) => {
    const inputs = pulumi.runtime.deserializeProperties(req.getObject()) as Record<string, unknown>;
    const recorded: RecordedResource = {
      type: req.getType(),
      name: req.getName(),
      parent: nameFromUrn(req.getParent()),
      custom: req.getCustom(),
      inputs: redactSecrets(inputs) as Record<string, unknown>,
      sshTarget: sshTargetOf(inputs),
      dependsOn: (req.getDependenciesList() as string[]).map((u) => nameFromUrn(u) ?? u).sort(),
      importId: req.getImportid() || null,
      replaceOnChanges: [...(req.getReplaceonchangesList() as string[])].sort(),
      outputs: null,
    };
    into.push(recorded);
    return register(req, (err: any, res: any) => {
      if (!err && res) byUrn.set(res.getUrn(), recorded);
      callback(err, res);
    });
  };
  monitor.registerResourceOutputs = (req: any, callback: (err: any, res: any) => void) => {
    const recorded = byUrn.get(req.getUrn());
    if (recorded) {
      recorded.outputs = redactSecrets(pulumi.runtime.deserializeProperties(req.getOutputs())) as Record<string, unknown>;
    }
    return registerOutputs(req, callback);
  };
}

/** Runs `programPath` (default: the repository's index.ts) with `config` and returns what it registered. */
export async function runProgram(
  config: StackConfig,
  programPath = path.join(__dirname, "..", "index.ts"),
): Promise<RecordedResource[]> {
  pulumi.runtime.setAllConfig(config.values, config.secretKeys);
  await pulumi.runtime.setMocks(mocks, config.project, config.stack, false);
  const records: RecordedResource[] = [];
  record(pulumi.runtime.getMonitor() as unknown as MockMonitor, records);
  const restore = skipDebugStackTraces();
  try {
    // As Pulumi's runtime does (sdk/nodejs/cmd/run/run.ts): a program that exports a
    // function is that function, awaited.
    const exported: unknown = require(programPath);
    if (typeof exported === "function") await exported();
    // Waits until every registration and apply the program started has finished.
    await pulumi.runtime.disconnect();
  } finally {
    restore();
  }
  return records;
}

/**
 * The SDK captures a stack trace for every promise it creates (debuggablePromise in
 * sdk/nodejs/runtime/debuggable.ts, a dozen per resource, shown only by
 * PULUMI_DEBUG_PROMISE_LEAKS) and for every resource (Resource.callsites in
 * sdk/nodejs/resource.ts, the source position the engine shows next to a resource).
 * Neither reaches the plan: the mock monitor drops source positions. Under tsx every
 * one of them is also source-mapped, and together they were half of the plan's time.
 * While the program runs, both are skipped; the promise-leak check at exit stays.
 * Returns the function that puts the SDK back as it was.
 */
function skipDebugStackTraces(): () => void {
  if (process.env.PULUMI_DEBUG_PROMISE_LEAKS) return () => {};
  const debuggable = require("@pulumi/pulumi/runtime/debuggable") as {
    debuggablePromise: <T>(p: Promise<T>, ctx: unknown) => Promise<T>;
  };
  const state = require("@pulumi/pulumi/runtime/state") as { getStore(): { leakCandidates: Set<Promise<unknown>> } };
  const { debuggablePromise } = debuggable;
  const resource = pulumi.Resource as unknown as { callsites(): unknown[] };
  const { callsites } = resource;
  // The SDK's first debuggablePromise schedules its leak report for process exit.
  void debuggablePromise(Promise.resolve(), "edgeplane: offline plan");
  debuggable.debuggablePromise = <T>(p: Promise<T>): Promise<T> => {
    // As the SDK's: a promise still pending at exit is reported as a leak.
    const candidates = state.getStore().leakCandidates;
    candidates.add(p);
    const settled = () => candidates.delete(p);
    p.then(settled, settled);
    return p;
  };
  resource.callsites = () => [];
  return () => {
    debuggable.debuggablePromise = debuggablePromise;
    resource.callsites = callsites;
  };
}
