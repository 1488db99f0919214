/**
 * What only the real engine can show: `pulumi up` of a small stack with the real
 * plugins, the Cloudflare API stand-in, and remote commands going to a throwaway sshd
 * on loopback that records every command it is asked to run (text, stdin hash) and
 * succeeds. One stack is brought up once and then changed step by step; adoption uses
 * a second stack.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { parsePreviewJson, urnName, type PreviewStep, type ScratchProject, type StepState } from "../../plan/engine";
import { startApiStandIn, type ApiStandIn, type StoredToken } from "../support/api-stand-in";
import { scratchProject, skipWithoutPulumi, standInProviderConfig } from "../support/pulumi";
import { haveSshd, startRecordingSshd, type RecordedSession, type RecordingSshd } from "../support/recording-sshd";

const ZONE = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
/** The adoption test's own zone, so its records never meet the first stack's. */
const ADOPT_ZONE = "6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f";
/** The host-key test's own zone. */
const PINNED_ZONE = "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function skipReason(): string | undefined {
  const pulumi = skipWithoutPulumi();
  if (pulumi) return pulumi;
  if (haveSshd()) return undefined;
  const message = "OpenSSH's sshd and ssh-keygen are missing (Debian: apt-get install openssh-server)";
  if (process.env.CI) throw new Error(message);
  return message;
}

/** A small stack written for these tests: one host (the recording sshd), two services with tokens. */
function stackConfig(sshd: RecordingSshd, zone = { id: ZONE, name: "example.com" }): Record<string, unknown> {
  return {
    "edgeplane:domain": zone.name,
    "edgeplane:cloudflare": { zoneId: zone.id },
    "edgeplane:tls": { issuer: "cloudflare-dns" },
    "edgeplane:hosts": {
      edge: {
        ingress: true,
        publicIPv4: "203.0.113.10",
        tailnetIP: "100.64.0.1",
        // Pinned: the command provider must check it (a wrong key would fail every command).
        ssh: { host: "127.0.0.1", port: sshd.port, user: sshd.user, hostKey: sshd.hostKey },
      },
    },
    "edgeplane:services": {
      web: {
        host: "edge",
        image: "docker.io/library/nginx:1.27.2-alpine",
        port: 80,
        caddyPort: 10443,
        secrets: ["APP_SECRET"],
      },
      api: { host: "edge", image: "docker.io/traefik/whoami:v1.10.3", port: 80, caddyPort: 10444 },
    },
  };
}

interface Up {
  readonly stdout: string;
  /** stdout and stderr. */
  readonly output: string;
  /** Sessions the sshd recorded during this run. */
  readonly sessions: RecordedSession[];
}

/** Runs the CLI and returns its output and the remote commands it ran; fails on a non-zero exit. */
async function engine(
  project: ScratchProject,
  sshd: RecordingSshd,
  args: string[],
  env: Record<string, string> = {},
): Promise<Up> {
  const before = sshd.sessions().length;
  const result = await project.run(args, { env });
  const output = `${result.stdout}\n${result.stderr}`;
  assert.equal(result.code, 0, `pulumi ${args.join(" ")}:\n${output.slice(-20_000)}`);
  return { stdout: result.stdout, output, sessions: sshd.sessions().slice(before) };
}

/** The values a deploy's stdin carries, one base64 line each (components/pod/deploy.ts). */
function bundleLines(stdin: string): string[] {
  return stdin
    .split("\n")
    .filter(Boolean)
    .map((line) => Buffer.from(line, "base64").toString("utf8"));
}

/** The top-level component a resource sits under (its service's SidecarPod, or the host's IngressHost). */
function owner(step: PreviewStep, steps: readonly PreviewStep[]): string {
  const parents = new Map(steps.map((s) => [s.urn, s.newState?.parent ?? s.oldState?.parent]));
  let urn = step.urn;
  for (let p = parents.get(urn); p && !p.includes("::pulumi:pulumi:Stack::"); p = parents.get(p)) urn = p;
  return urnName(urn);
}

/** `resourcePreEvent`s of an event log, in order: op and resource name. */
function engineOrder(eventLog: string): { op: string; name: string }[] {
  return fs
    .readFileSync(eventLog, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { resourcePreEvent?: { metadata: { op: string; urn: string } } })
    .filter((e) => e.resourcePreEvent)
    .map((e) => ({ op: e.resourcePreEvent!.metadata.op, name: urnName(e.resourcePreEvent!.metadata.urn) }));
}

describe("engine semantics: pulumi up against the stand-in and a recording sshd", { skip: skipReason() }, () => {
  let standIn: ApiStandIn;
  let sshd: RecordingSshd;
  let project: ScratchProject;
  const stack = "semantics";
  /** Everything the engine printed, per log level, for the secrets check. */
  const printed: { level: string; text: string }[] = [];

  before(async () => {
    standIn = await startApiStandIn({
      zones: [
        { id: ZONE, name: "example.com" },
        { id: ADOPT_ZONE, name: "example.net" },
        { id: PINNED_ZONE, name: "example.org" },
      ],
    });
    sshd = await startRecordingSshd();
    project = scratchProject();
    const providers = standInProviderConfig(standIn);
    await project.createStack(
      stack,
      { ...providers.config, ...stackConfig(sshd) },
      { ...providers.secrets, "edgeplane:sshPrivateKey": sshd.clientKey },
    );
  });
  after(async () => {
    project?.dispose();
    await sshd?.stop();
    await standIn?.close();
  });

  /** The stdin the engine holds for a pod's deploy command, from the exported state (secrets shown). */
  const deployStdin = async (service: string): Promise<string> => {
    const exported = await project.run(["stack", "export", "--stack", stack, "--show-secrets"]);
    assert.equal(exported.code, 0, exported.stderr);
    const resources: { urn: string; inputs?: { stdin?: unknown } }[] = JSON.parse(exported.stdout).deployment.resources;
    const stdin = resources.find((r) => r.urn.endsWith(`::${service}-deploy`))?.inputs?.stdin;
    // A secret is exported as {<signature>, plaintext: <its JSON>}.
    const value = stdin && typeof stdin === "object" && "plaintext" in stdin ? JSON.parse(String(stdin.plaintext)) : stdin;
    assert.equal(typeof value, "string", `no stdin for ${service}-deploy`);
    return value as string;
  };
  const tokensNamed = (prefix: string): StoredToken[] => standIn.state().tokens.filter((t) => t.name.startsWith(prefix));

  it("brings the stack up: records and tokens at the API, every command over SSH", async () => {
    const up = await engine(project, sshd, ["up", "--stack", stack, "--yes", "--skip-preview"]);
    printed.push({ level: "default", text: up.output });
    const records = standIn.state().records.map((r) => `${r.type} ${r.name} ${r.content}`);
    assert.deepEqual(records.sort(), ["A api.example.com 203.0.113.10", "A web.example.com 203.0.113.10"]);
    assert.deepEqual(
      tokensNamed("edgeplane-semantics-")
        .map((t) => t.name)
        .sort(),
      ["edgeplane-semantics-api", "edgeplane-semantics-web"].sort(),
    );
    // One session per pod: its deploy, which carries its token on stdin, never in its text.
    for (const service of ["api", "web"]) {
      const deploys = up.sessions.filter((x) => x.command.startsWith(`# edgeplane: deploy pod ${service} `));
      assert.equal(deploys.length, 1, `${service}: ${deploys.length} deploy sessions`);
    }
    for (const token of tokensNamed("edgeplane-semantics-")) {
      const service = token.name.replace("edgeplane-semantics-", "");
      const session = up.sessions.find((x) => x.command.startsWith(`# edgeplane: deploy pod ${service} `))!;
      assert.equal(session.stdinSha256, sha256(await deployStdin(service)));
      assert.ok(bundleLines(await deployStdin(service)).includes(token.value), `${service}'s token is on its stdin`);
      for (const x of up.sessions) assert.ok(!x.command.includes(token.value));
    }
  });

  it("does nothing on a second up with no change: no change reported, no command run", async () => {
    const up = await engine(project, sshd, ["up", "--stack", stack, "--yes", "--skip-preview", "--expect-no-changes"]);
    printed.push({ level: "default", text: up.output });
    assert.match(up.output, /^\s+\d+ unchanged$/m);
    assert.doesNotMatch(up.output, /to (create|update|delete|replace)|created|updated|deleted|replaced/);
    assert.deepEqual(up.sessions, []);
  });

  it("updates only the changed service's resources, in place, and runs only its commands", async () => {
    project.editConfig(stack, (c) => {
      (c["edgeplane:services"] as Record<string, { image: string }>).web!.image = "docker.io/library/nginx:1.27.3-alpine";
    });
    const preview = parsePreviewJson((await engine(project, sshd, ["preview", "--stack", stack, "--json"])).stdout);
    const steps = preview.steps ?? [];
    const changed = steps.filter((s) => s.op !== "same");
    // The pod (its file list) and its one deploy command.
    assert.deepEqual(changed.map((s) => `${s.op} ${urnName(s.urn)}`).sort(), ["update web", "update web-deploy"]);
    assert.ok(changed.every((s) => owner(s, steps) === "web"));
    // What a reviewer reads in the preview: the one file that changed, with its new hash.
    const deploy = changed.find((s) => urnName(s.urn) === "web-deploy")!;
    const fileLines = (state?: StepState) =>
      String(state?.inputs?.create ?? "")
        .split("\n")
        .filter((l) => l.startsWith("# file "));
    const was = fileLines(deploy.oldState);
    const now = fileLines(deploy.newState);
    assert.deepEqual(
      now.filter((l) => !was.includes(l)).map((l) => l.replace(/[0-9a-f]{64}$/, "<sha256>")),
      ["# file /var/lib/edgeplane/web/.config/containers/systemd/web-app.container 0644 sha256 <sha256>"],
    );
    const pod = changed.find((s) => urnName(s.urn) === "web")!;
    const appFile = (pod.newState?.inputs?.files as { path: string; sha256: string }[]).find((f) =>
      f.path.endsWith("/web-app.container"),
    )!;
    assert.ok(now.includes(`# file ${appFile.path} 0644 sha256 ${appFile.sha256}`));
    const up = await engine(project, sshd, ["up", "--stack", stack, "--yes", "--skip-preview"]);
    printed.push({ level: "default", text: up.output });
    // The engine's own summary: two updated, nothing created, deleted or replaced.
    assert.match(up.output, /^\s+~ 2 updated$/m);
    assert.doesNotMatch(up.output, /\b(created|deleted|replaced)\b/);
    // One SSH session: web's deploy, whose text names the one file that changed.
    assert.deepEqual(
      up.sessions.map((s) => s.command.split("\n")[0]),
      ["# edgeplane: deploy pod web as ep-web, validated as a whole before anything changes"],
    );
  });

  it("rotates a token: the new one is created and swapped in before the old is deleted", async () => {
    const old = tokensNamed("edgeplane-semantics-web")[0]!;
    project.editConfig(stack, (c) => {
      (c["edgeplane:services"] as Record<string, { tokenRotation?: string }>).web!.tokenRotation = "r2";
    });
    const eventLog = path.join(project.dir, "rotation-events.jsonl");
    const up = await engine(
      project,
      sshd,
      ["up", "--stack", stack, "--yes", "--skip-preview", "--debug", "--event-log", eventLog],
      {
        PULUMI_DEBUG_COMMANDS: "true",
      },
    );
    printed.push({ level: "debug", text: up.output });
    const order = engineOrder(eventLog).filter((e) => e.op !== "same" && e.op !== "refresh");
    const at = (op: string, name: string) => {
      const i = order.findIndex((e) => e.op === op && e.name === name);
      assert.ok(i >= 0, `no ${op} of ${name} in ${JSON.stringify(order)}`);
      return i;
    };
    assert.ok(at("create-replacement", "web-token") < at("update", "web-deploy"));
    assert.ok(at("update", "web-deploy") < at("delete-replaced", "web-token"));
    assert.deepEqual(
      order.map((e) => `${e.op} ${e.name}`).filter((e) => !e.endsWith("web-token")),
      ["update web-deploy"],
      "nothing but the token and the pod's deploy changes",
    );
    const now = tokensNamed("edgeplane-semantics-web");
    assert.deepEqual(
      now.map((t) => t.name),
      ["edgeplane-semantics-web-r2"],
    );
    assert.ok(!standIn.state().tokens.some((t) => t.id === old.id), "the old token is deleted");
    // The pod's deploy got the new token on stdin (it reloads Caddy with it: test/pod-deploy.test.ts).
    assert.equal(up.sessions.length, 1);
    assert.equal(up.sessions[0]!.stdinSha256, sha256(await deployStdin("web")));
    assert.ok(bundleLines(await deployStdin("web")).includes(now[0]!.value));
  });

  it("keeps every secret out of the exported state and out of the engine's output", async () => {
    // One more change, at the most verbose log level the engine documents as credential-free.
    project.editConfig(stack, (c) => {
      (c["edgeplane:services"] as Record<string, { image: string }>).api!.image = "docker.io/traefik/whoami:v1.10.4";
    });
    const verbose = await engine(project, sshd, ["up", "--stack", stack, "--yes", "--skip-preview", "-v=9", "--logtostderr"]);
    const exported = await engine(project, sshd, ["stack", "export", "--stack", stack]);
    const withSecrets = JSON.parse(
      (await engine(project, sshd, ["stack", "export", "--stack", stack, "--show-secrets"])).stdout,
    ) as {
      deployment: { resources: { type: string; outputs?: Record<string, unknown> }[] };
    };
    const generated = withSecrets.deployment.resources
      .filter((r) => r.type === "random:index/randomPassword:RandomPassword")
      .map((r) => String(r.outputs?.result));
    assert.equal(generated.length, 1);
    const keyBody = sshd.clientKey.split("\n").filter((l) => l && !l.startsWith("-----"));
    const secrets: [string, string][] = [
      ...keyBody.map((line, i) => [`SSH key line ${i + 1}`, line] as [string, string]),
      ...standIn.state().tokens.map((t) => [`token ${t.name}`, t.value] as [string, string]),
      ...generated.map((v) => ["generated APP_SECRET", v] as [string, string]),
    ];
    const leaks = (text: string) => secrets.filter(([, value]) => text.includes(value)).map(([what]) => what);
    assert.deepEqual(leaks(exported.output), [], "exported state");
    for (const { level, text } of printed) assert.deepEqual(leaks(text), [], `engine output at ${level} level`);
    // At -v=9 the engine itself (not edgeplane) writes property values of the provider
    // RPCs it makes, secrets included (sdk/go/common/resource/plugin/rpc.go logs
    // "Marshaling property for RPC" at V(9); step_generator.go logs "Planner decided to
    // create" with inputs at V(7)). Nothing else may carry a secret.
    const engineTrace = /"msg":"(Marshaling property for RPC|Unmarshaling property for RPC|Planner decided)/;
    const offending = verbose.output
      .split("\n")
      .filter((line) => !engineTrace.test(line) && leaks(line).length > 0)
      .map((line) => `${leaks(line).join(", ")}: ${line.slice(0, 200)}`);
    assert.deepEqual(offending, [], "engine output at -v=9, outside the engine's own RPC traces");
    for (const s of sshd.sessions()) assert.deepEqual(leaks(s.command), [], "a command's text");
  });

  it("sends nothing to a server that does not hold the pinned host key", async () => {
    const pinnedElsewhere = scratchProject();
    try {
      const providers = standInProviderConfig(standIn);
      const config = stackConfig(sshd, { id: PINNED_ZONE, name: "example.org" });
      // A valid Ed25519 key, but not the one this sshd holds.
      const edge = (config["edgeplane:hosts"] as Record<string, { ssh: { hostKey: string } }>).edge!;
      edge.ssh.hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJHt9pmQrCEVqzITQshw4kYGob9kPjibdv+ZNGoeO4/B";
      assert.notEqual(edge.ssh.hostKey, sshd.hostKey);
      await pinnedElsewhere.createStack(
        "pinned",
        {
          ...providers.config,
          ...config,
          "edgeplane:services": { api: (config["edgeplane:services"] as Record<string, unknown>).api },
        },
        { ...providers.secrets, "edgeplane:sshPrivateKey": sshd.clientKey },
      );
      const sessions = sshd.sessions().length;
      const result = await pinnedElsewhere.run(["up", "--stack", "pinned", "--yes", "--skip-preview"]);
      const output = `${result.stdout}\n${result.stderr}`;
      assert.notEqual(result.code, 0, output);
      assert.match(output, /ssh: handshake failed: ssh: host key mismatch/);
      assert.equal(sshd.sessions().length, sessions, "a session reached the server");
    } finally {
      pinnedElsewhere.dispose();
    }
  });

  it("adopts existing records: the preview shows only imports with no diff for them, then up adopts them", async () => {
    const adopt = scratchProject();
    try {
      const seed = (service: string) =>
        standIn.seedRecord({
          zoneId: ADOPT_ZONE,
          name: `${service}.example.net`,
          type: "A",
          content: "203.0.113.10",
          ttl: 1,
          proxied: false,
          comment: `managed by edgeplane: stack adopted, service ${service}`,
        });
      const existing = { web: seed("web"), api: seed("api") };
      const providers = standInProviderConfig(standIn);
      await adopt.createStack(
        "adopted",
        {
          ...providers.config,
          ...stackConfig(sshd, { id: ADOPT_ZONE, name: "example.net" }),
          "edgeplane:adopt": { records: { web: { A: existing.web.id }, api: { A: existing.api.id } } },
        },
        { ...providers.secrets, "edgeplane:sshPrivateKey": sshd.clientKey },
      );
      const preview = parsePreviewJson((await engine(adopt, sshd, ["preview", "--stack", "adopted", "--json"])).stdout);
      const imports = (preview.steps ?? []).filter((s) => s.op === "import");
      assert.deepEqual(imports.map((s) => urnName(s.urn)).sort(), ["api-dns", "web-dns"]);
      for (const s of imports) {
        assert.deepEqual(s.diffReasons ?? [], [], `${urnName(s.urn)} differs from what exists`);
        assert.deepEqual(s.detailedDiff ?? {}, {}, `${urnName(s.urn)} differs from what exists`);
      }
      // Nothing that exists is created again.
      const created = (preview.steps ?? []).filter((s) => s.op === "create").map((s) => urnName(s.urn));
      assert.ok(!created.includes("web-dns") && !created.includes("api-dns"));
      await engine(adopt, sshd, ["up", "--stack", "adopted", "--yes", "--skip-preview"]);
      const records = standIn.state().records.filter((r) => r.zone_id === ADOPT_ZONE);
      assert.deepEqual(records.map((r) => r.id).sort(), [existing.web.id, existing.api.id].sort());
      const exported = JSON.parse((await engine(adopt, sshd, ["stack", "export", "--stack", "adopted"])).stdout) as {
        deployment: { resources: { urn: string; id?: string }[] };
      };
      const ids = new Map(exported.deployment.resources.map((r) => [urnName(r.urn), r.id]));
      assert.equal(ids.get("web-dns"), existing.web.id);
      assert.equal(ids.get("api-dns"), existing.api.id);
      // A second preview: what was adopted is now simply managed.
      const again = parsePreviewJson((await engine(adopt, sshd, ["preview", "--stack", "adopted", "--json"])).stdout);
      const dns = (again.steps ?? []).filter((s) => urnName(s.urn).endsWith("-dns"));
      assert.deepEqual(
        dns.map((s) => `${s.op} ${urnName(s.urn)}`),
        [],
      );
    } finally {
      adopt.dispose();
    }
  });
});
