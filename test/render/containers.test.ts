/**
 * Further containers in a pod (`services.<name>.containers`): Authentik's worker and
 * PostgreSQL beside its server, say. They join the pod, share its generated secrets,
 * and publish nothing.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { renderPodFiles } from "../../components/pod/render";
import { buildModel } from "../../model";
import { EDGE_HOST_KEY } from "../fixtures/models";
import { sectionLines } from "../support/units";
import { haveTool, toolPath } from "../support/tools";
import { unitProblems } from "../support/validators";

const model = buildModel({
  domain: "example.org",
  cloudflare: { zoneId: "0123456789abcdef0123456789abcdef" },
  tls: { issuer: "internal" },
  hosts: {
    edge: {
      ingress: true,
      publicIPv4: "203.0.113.10",
      tailnetIP: "100.64.0.1",
      ssh: { host: "edge", user: "ops", hostKey: EDGE_HOST_KEY },
    },
  },
  services: {
    auth: {
      host: "edge",
      image: "ghcr.io/goauthentik/server:2025.10.1",
      port: 9000,
      caddyPort: 10400,
      command: ["server"],
      secrets: ["AUTHENTIK_SECRET_KEY", "AUTHENTIK_POSTGRESQL__PASSWORD"],
      containers: {
        worker: {
          image: "ghcr.io/goauthentik/server:2025.10.1",
          command: ["worker"],
          secrets: ["AUTHENTIK_SECRET_KEY", "AUTHENTIK_POSTGRESQL__PASSWORD"],
        },
        postgresql: {
          image: "docker.io/library/postgres:16.4-alpine",
          env: { POSTGRES_USER: "authentik" },
          secrets: ["POSTGRES_PASSWORD=AUTHENTIK_POSTGRESQL__PASSWORD"],
          volumes: ["auth-db:/var/lib/postgresql/data"],
        },
      },
    },
  },
});
const service = model.services[0]!;
const files = renderPodFiles(model, service);
const unit = (name: string) => {
  const f = files.find((x) => x.path.endsWith(`/${name}`));
  assert.ok(f, `no ${name}`);
  return f.content;
};

describe("further containers in a pod", () => {
  it("renders one unit per container, in the service's pod, named after both", () => {
    for (const c of ["worker", "postgresql"]) {
      const lines = sectionLines(unit(`auth-${c}.container`), "Container");
      assert.ok(lines.includes(`ContainerName=auth-${c}`));
      assert.ok(lines.includes("Pod=auth.pod"));
    }
    assert.ok(sectionLines(unit("auth-worker.container"), "Container").includes("Exec=worker"));
    assert.ok(sectionLines(unit("auth-app.container"), "Container").includes("Exec=server"));
  });

  it("hands a generated secret to another container under the name it expects", () => {
    const db = sectionLines(unit("auth-postgresql.container"), "Container");
    const app = sectionLines(unit("auth-app.container"), "Container");
    const secretOf = (lines: string[], env: string) =>
      lines.find((l) => l.startsWith("Secret=") && l.endsWith(`,type=env,target=${env}`))?.split(",")[0];
    assert.ok(secretOf(db, "POSTGRES_PASSWORD"));
    assert.equal(secretOf(db, "POSTGRES_PASSWORD"), secretOf(app, "AUTHENTIK_POSTGRESQL__PASSWORD"), "one value, two names");
  });

  it("publishes nothing but Caddy's port and its metrics, whatever the containers", () => {
    const published = files.flatMap((f) =>
      f.content.split("\n").filter((l) => /^(PublishPort|Network)=/.test(l) || /--publish|-p /.test(l)),
    );
    assert.deepEqual(published, ["Network=pasta", "PublishPort=100.64.0.1:10400:443", "PublishPort=100.64.0.1:30400:30400"]);
  });

  it("passes Quadlet and systemd-analyze", { skip: !haveTool("quadlet") && "quadlet is not built" }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-containers-"));
    for (const f of files.filter((x) => /\.(pod|container|volume)$/.test(x.path)))
      fs.writeFileSync(path.join(dir, path.basename(f.path)), f.content);
    assert.equal(unitProblems(toolPath("quadlet")!, dir, true), "");
  });
});
