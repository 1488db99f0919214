/**
 * Real `pulumi preview` of every stack (the two examples and one written fresh to the
 * contract) with the real engine, language host and provider plugins, the providers
 * pointed at the API stand-in: it succeeds with no warning, with and without the
 * policy pack; and a broken copy of each stack is refused by every policy of the pack.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { startApiStandIn, type ApiStandIn } from "../support/api-stand-in";
import { createStackFrom, repoRoot, scratchProject, skipWithoutPulumi, stackZones, STACKS } from "../support/pulumi";

const policyPack = path.join(repoRoot, "policy");

/** Lines of a preview's text output that are a warning, an error or a policy finding. */
function complaints(output: string): string[] {
  return output.split("\n").filter((line) => /\bwarning\b|\berror\b|\[(advisory|mandatory|remediate)\]/i.test(line));
}

/** `pulumi preview`'s policy findings: `- [mandatory]  <policy>  (<type>: <name>)`. */
function findings(output: string): string[] {
  return [...output.matchAll(/^\s*- \[(?:mandatory|advisory)\]\s+(\S+)\s+\((\S+): (\S+)\)$/gm)]
    .map(([, policy, , name]) => `${policy} ${name}`)
    .sort();
}

/**
 * A copy of the program with one resource added per policy, each breaking it the way a
 * hand-written addition to index.ts could: a record pointing away from the ingress, a
 * token with a third permission group, a command with a private key in its text, a
 * pushed unit whose container publishes a port.
 */
function brokenProgram(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-broken-"));
  const from = (module: string) => JSON.stringify(path.join(repoRoot, module));
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "edgeplane-broken", main: "index.ts" }));
  fs.writeFileSync(
    path.join(dir, "tsconfig.json"),
    JSON.stringify({ extends: path.join(repoRoot, "tsconfig.json"), include: ["index.ts"] }),
  );
  fs.writeFileSync(
    path.join(dir, "index.ts"),
    `import * as cloudflare from "@pulumi/cloudflare";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { RemoteFile } from ${from("components/remote/file")};
import { DNS_WRITE, ZONE_READ } from ${from("policy/rules")};
// The program is its module's \`export =\` (the entry point Pulumi awaits): pass it on.
import program = require(${from("index")});
export = program;

const zoneId = new pulumi.Config("edgeplane").requireObject<{ zoneId: string }>("cloudflare").zoneId;
const connection = { host: "127.0.0.1", user: "nobody" };
new cloudflare.DnsRecord("rogue-dns", { zoneId, name: "rogue.example.org", type: "A", content: "192.0.2.66", proxied: false, ttl: 1 });
new cloudflare.ApiToken("rogue-token", {
  name: "rogue",
  policies: [{
    effect: "allow",
    permissionGroups: [{ id: DNS_WRITE }, { id: ZONE_READ }, { id: "e6d2666161e84845a636613608cee8d5" }],
    resources: JSON.stringify({ [\`com.cloudflare.api.account.zone.\${zoneId}\`]: "*" }),
  }],
});
new command.remote.Command("rogue-command", { connection, create: "echo '-----BEGIN OPENSSH PRIVATE KEY-----' > /tmp/key" });
new RemoteFile("rogue-unit", {
  connection, host: "rogue", path: "/etc/containers/systemd/rogue.container", owner: "root", mode: "0644",
  content: "[Container]\\nImage=docker.io/library/nginx:1.27.2\\nPublishPort=8080:80\\n",
});
`,
  );
  return dir;
}

describe("real pulumi preview", { skip: skipWithoutPulumi() }, () => {
  let standIn: ApiStandIn;
  let broken: string;
  before(async () => {
    standIn = await startApiStandIn({ zones: STACKS.flatMap((s) => stackZones(s.file)) });
    broken = brokenProgram();
  });
  after(async () => {
    await standIn?.close();
    fs.rmSync(broken, { recursive: true, force: true });
  });

  for (const stack of STACKS) {
    it(`previews ${stack.name} with no warning, with and without the policy pack, and calls no API`, async () => {
      const project = scratchProject();
      try {
        await createStackFrom(project, stack.name, stack.file, standIn);
        standIn.clearRequests();
        for (const pack of [[], ["--policy-pack", policyPack]]) {
          const result = await project.run(["preview", "--stack", stack.name, ...pack]);
          const output = `${result.stdout}\n${result.stderr}`;
          assert.equal(result.code, 0, output);
          assert.deepEqual(complaints(output), [], output);
          assert.match(result.stdout, /^\s+\+ \d+ to create$/m);
          if (pack.length > 0) assert.match(result.stdout, /✅ edgeplane@v0\.1\.0/);
        }
        // Neither provider calls its API during a preview (only `up` does).
        assert.deepEqual(standIn.state().requests, []);
      } finally {
        project.dispose();
      }
    });

    it(`refuses a broken copy of ${stack.name} by each policy`, async () => {
      const project = scratchProject({ program: broken });
      try {
        await createStackFrom(project, stack.name, stack.file, standIn);
        const result = await project.run(["preview", "--stack", stack.name, "--policy-pack", policyPack]);
        const output = `${result.stdout}\n${result.stderr}`;
        assert.notEqual(result.code, 0, output);
        // Each policy refuses its rogue resource, and nothing of the stack itself.
        assert.deepEqual(
          findings(result.stdout),
          [
            "no-secret-in-command-text rogue-command",
            "pods-publish-only-caddy edgeplane-" + stack.name,
            "records-point-at-the-ingress rogue-dns",
            "tokens-dns-on-one-zone rogue-token",
          ].sort(),
          output,
        );
        assert.match(result.stdout, /rogue\.container \(rogue-unit on rogue\): publishes 8080:80 from a \[Container\]/);
      } finally {
        project.dispose();
      }
    });
  }
});
