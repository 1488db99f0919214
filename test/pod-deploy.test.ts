/**
 * Runs the exact shell of a pod's deploy command (components/pod/deploy.ts) locally, on
 * a scratch home, with the real Quadlet, systemd-analyze and Caddy (in place of the
 * pod's image), and stand-ins for sudo, systemctl and podman that keep their state in
 * files and log what they were asked to do. It checks what an operator relies on: a
 * pod's files are validated together before any is installed, and a change restarts
 * the pod, reloads its Caddy in place, or does nothing, as the change requires.
 * The same script runs on real hosts in test/e2e/stack.test.ts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { podDeploySpec } from "../components/pod";
import { deployBundle, podDeployScript, podRemoveScript, type DeploySecret, type PodDeploySpec } from "../components/pod/deploy";
import { renderPodFiles } from "../components/pod/render";
import { RATE_LIMIT_MODULE } from "../components/pod/render/caddyfile";
import { DEFAULT_CADDY_IMAGE } from "../model/caddy-version";
import { serviceHome } from "../model/topology";
import type { Model, Service } from "../model/types";
import { fleet } from "./fixtures/models";
import { fakeBin } from "./support/fakebin";
import { requireTool } from "./support/tools";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const TOKEN = "tokenA0123456789abcdefghijklmnopqrstuvwx";
const NEW_TOKEN = "tokenB0123456789abcdefghijklmnopqrstuvwx";

/** Stand-ins: systemctl and podman keep state under $STATE and log each action to $STATE/log. */
function standIns(): string {
  const bin = fakeBin();
  const write = (name: string, text: string) => fs.writeFileSync(path.join(bin, name), text, { mode: 0o755 });
  write("loginctl", "#!/bin/sh\nexit 0\n");
  write(
    "systemctl",
    `#!/bin/sh
[ "$1" = --user ] && shift
case "$1" in
  start) exit 0 ;;
  is-active) [ -e "$STATE/running" ] ;;
  daemon-reload) echo daemon-reload >>"$STATE/log" ;;
  restart) [ -e "$STATE/fail-restart" ] && { echo "Job for $2 failed" >&2; exit 1; }; touch "$STATE/running"; echo "restart $2" >>"$STATE/log" ;;
  stop) rm -f "$STATE/running"; echo "stop $2" >>"$STATE/log" ;;
  *) exit 2 ;;
esac
`,
  );
  // podman run … IMAGE caddy ARGS: the real Caddy for the image ($TEST_CADDY), with the
  // mounted file as its Caddyfile and the token from the environment, as in the container.
  write(
    "podman",
    `#!/bin/sh
mkdir -p "$STATE/secrets"
case "$1 $2" in
  "secret inspect") eval "name=\\\${$#}"; [ -f "$STATE/secrets/$name" ] && cat "$STATE/secrets/$name" ;;
  "secret create")
    shift 2
    if [ "$1" = --replace ]; then shift
    elif [ -f "$STATE/secrets/$1" ]; then echo "Error: $1: secret name in use" >&2; exit 125; fi
    cat >"$STATE/secrets/$1"; echo "secret $1" >>"$STATE/log" ;;
  "secret ls") ls "$STATE/secrets" ;;
  "secret rm") rm "$STATE/secrets/$3"; echo "secret-rm $3" >>"$STATE/log" ;;
  "container inspect") echo true ;;
  "exec --env")
    [ -e "$STATE/fail-reload" ] && { echo "Error: loading new config: token $CF_API_TOKEN refused" >&2; exit 1; }
    echo "reload token-sha256=$(printf %s "$CF_API_TOKEN" | sha256sum | cut -c1-64)" >>"$STATE/log" ;;
  run*)
    shift; config=
    while [ $# -gt 0 ]; do
      case "$1" in
        --rm) shift ;;
        --network|--env) shift 2 ;;
        -v) config="\${2%%:/etc/caddy/Caddyfile*}"; shift 2 ;;
        *) break ;;
      esac
    done
    shift 2
    if [ "$1" = validate ]; then exec "$TEST_CADDY" validate --adapter caddyfile --config "$config"; fi
    exec "$TEST_CADDY" "$@" ;;
  *) echo "podman stand-in: unexpected $*" >&2; exit 2 ;;
esac
`,
  );
  return bin;
}

interface Host {
  home: string;
  state: string;
  spec: PodDeploySpec;
  deploy(files: readonly string[], secrets: readonly string[]): { code: number | null; stderr: string; log: string[] };
  remove(asHost?: string): { code: number | null; stdout: string; log: string[] };
  installed(): Record<string, string>;
  secret(name: string): string | undefined;
}

/** A scratch host for `service`'s pod: its home in a temporary folder, the real tools given. */
function host(platform: Model, service: Service, secrets: DeploySecret[], tools: { quadlet: string; caddy: string }): Host {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-pod-deploy-"));
  const home = path.join(root, "home");
  const state = path.join(root, "state");
  fs.mkdirSync(home);
  fs.mkdirSync(state);
  const subuid = path.join(root, "subuid");
  fs.writeFileSync(subuid, `ep-${service.name}:100000:65536\n`);
  const relocate = (p: string) => home + p.slice(serviceHome(service).length);
  const files = renderPodFiles(platform, service).map((f) => ({
    path: relocate(f.path),
    mode: f.mode,
    sha256: sha256(f.content),
  }));
  const base = podDeploySpec(platform, service, files, secrets);
  const spec: PodDeploySpec = {
    ...base,
    home,
    unitDir: relocate(base.unitDir),
    caddyfile: relocate(base.caddyfile),
    quadlet: tools.quadlet,
    subuidFile: subuid,
    beforeStart: [],
  };
  const bin = standIns();
  const env = {
    PATH: `${bin}:${process.env.PATH}`,
    HOME: home,
    STATE: state,
    TEST_CADDY: tools.caddy,
    // Quadlet writes ExecStart= with $PODMAN; systemd-analyze checks it is an executable.
    PODMAN: path.join(bin, "podman"),
    XDG_DATA_HOME: path.join(root, "data"),
    XDG_CONFIG_HOME: path.join(root, "config"),
  };
  const run = (script: string, input: string) => {
    fs.rmSync(path.join(state, "log"), { force: true });
    const r = spawnSync("sh", ["-c", script], { input, encoding: "utf8", env });
    const log = fs.existsSync(path.join(state, "log")) ? fs.readFileSync(path.join(state, "log"), "utf8").trim().split("\n") : [];
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, log };
  };
  const script = podDeployScript(spec);
  return {
    home,
    state,
    spec,
    deploy: (contents, values) => run(script, deployBundle(contents, values)),
    remove: (asHost = spec.host) => run(podRemoveScript({ ...spec, host: asHost }), ""),
    installed: () =>
      Object.fromEntries(
        spec.files.filter((f) => fs.existsSync(f.path)).map((f) => [f.path.slice(home.length), fs.readFileSync(f.path, "utf8")]),
      ),
    secret: (name) => {
      const p = path.join(state, "secrets", name);
      return fs.existsSync(p) ? fs.readFileSync(p, "utf8") : undefined;
    },
  };
}

const grafana = fleet.services.find((s) => s.name === "grafana")!;
const GRAFANA_SECRETS: DeploySecret[] = [
  { name: "grafana-cf-api-token", onChange: "reload" },
  ...grafana.secrets.map((e) => ({ name: `grafana-${e.toLowerCase().replace(/_/g, "-")}`, onChange: "restart" as const })),
];
const APP_SECRET = "generated-app-secret-0123456789";

describe("a pod deploys as one unit", () => {
  const setup = (t: Parameters<typeof requireTool>[0]) => {
    const quadlet = requireTool(t, "quadlet");
    const caddy = requireTool(t, "caddy-cloudflare");
    if (!quadlet || !caddy) return undefined;
    assert.equal(fleet.tls.issuer, "cloudflare-dns");
    const h = host(fleet, grafana, GRAFANA_SECRETS, { quadlet, caddy });
    const files = renderPodFiles(fleet, grafana).map((f) => f.content);
    return { h, files };
  };
  const caddyIndex = () => renderPodFiles(fleet, grafana).findIndex((f) => f.path.endsWith("/Caddyfile"));
  const appIndex = () => renderPodFiles(fleet, grafana).findIndex((f) => f.path.endsWith("-app.container"));
  const tokenSha = (t: string) => `reload token-sha256=${sha256(t)}`;

  it("installs every file and secret on the first deploy and starts the pod; a repeat changes nothing", (t) => {
    const s = setup(t);
    if (!s) return;
    const first = s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    assert.equal(first.code, 0, first.stderr);
    const installed = s.h.installed();
    assert.deepEqual(Object.values(installed).sort(), [...s.files].sort(), "each file, byte for byte");
    assert.equal(s.h.secret("grafana-cf-api-token"), TOKEN);
    assert.equal(s.h.secret("grafana-gf-security-secret-key"), APP_SECRET);
    assert.deepEqual(
      first.log.filter((l) => !l.startsWith("secret ")),
      ["daemon-reload", "restart grafana-pod.service"],
    );
    const again = s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(again.log, [], "nothing restarted, reloaded or replaced");
    assert.ok(!fs.readdirSync(s.h.home).some((f) => f.startsWith(".edgeplane-stage")), "no staging folder left");
  });

  it("reloads Caddy in place for a Caddyfile change, keeping the previous file", (t) => {
    const s = setup(t);
    if (!s) return;
    s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    const changed = [...s.files];
    const i = caddyIndex();
    changed[i] = changed[i]!.replace(/^(\S.*\{)$/m, "$1\n\t# changed");
    const r = s.h.deploy(changed, [TOKEN, APP_SECRET]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.log, [tokenSha(TOKEN)]);
    const caddyfile = s.h.spec.caddyfile;
    assert.equal(fs.readFileSync(caddyfile, "utf8"), changed[i]);
    assert.equal(fs.readFileSync(`${caddyfile}.edgeplane-prev`, "utf8"), s.files[i]);
  });

  it("hands a rotated token to the running Caddy by a reload, not a restart", (t) => {
    const s = setup(t);
    if (!s) return;
    s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    const r = s.h.deploy(s.files, [NEW_TOKEN, APP_SECRET]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.log, ["secret grafana-cf-api-token", tokenSha(NEW_TOKEN)]);
    assert.equal(s.h.secret("grafana-cf-api-token"), NEW_TOKEN);
  });

  it("restarts the pod for a unit change or a new generated secret", (t) => {
    const s = setup(t);
    if (!s) return;
    s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    const changed = [...s.files];
    changed[appIndex()] = changed[appIndex()]!.replace(/^Image=.*$/m, "Image=docker.io/grafana/grafana:99.0.0");
    const unit = s.h.deploy(changed, [TOKEN, APP_SECRET]);
    assert.equal(unit.code, 0, unit.stderr);
    assert.deepEqual(unit.log, ["daemon-reload", "restart grafana-pod.service"]);
    const secret = s.h.deploy(changed, [TOKEN, "another-generated-secret-0123"]);
    assert.deepEqual(secret.log, ["secret grafana-gf-security-secret-key", "daemon-reload", "restart grafana-pod.service"]);
  });

  it("owes a restart or reload that a failed run did not finish, and does it on the next run", (t) => {
    const s = setup(t);
    if (!s) return;
    s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    const changed = [...s.files];
    changed[appIndex()] = changed[appIndex()]!.replace(/^Image=.*$/m, "Image=docker.io/grafana/grafana:99.0.0");
    fs.writeFileSync(path.join(s.h.state, "fail-restart"), "");
    const failed = s.h.deploy(changed, [TOKEN, APP_SECRET]);
    assert.notEqual(failed.code, 0);
    fs.rmSync(path.join(s.h.state, "fail-restart"));
    // The files are in place already; the restart is still owed.
    const retried = s.h.deploy(changed, [TOKEN, APP_SECRET]);
    assert.equal(retried.code, 0, retried.stderr);
    assert.deepEqual(retried.log, ["daemon-reload", "restart grafana-pod.service"]);
    assert.deepEqual(s.h.deploy(changed, [TOKEN, APP_SECRET]).log, [], "and then nothing more");
    // A reload Caddy refuses fails the run without printing the token, and is owed too.
    fs.writeFileSync(path.join(s.h.state, "fail-reload"), "");
    const refused = s.h.deploy(changed, [NEW_TOKEN, APP_SECRET]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Caddy of pod grafana refused the new config.*\n.*token \[token\] refused/);
    assert.ok(!refused.stderr.includes(NEW_TOKEN));
    fs.rmSync(path.join(s.h.state, "fail-reload"));
    assert.deepEqual(s.h.deploy(changed, [NEW_TOKEN, APP_SECRET]).log, [tokenSha(NEW_TOKEN)]);
  });

  it("refuses a unit Quadlet rejects, naming the installed folder, and changes nothing at all", (t) => {
    const s = setup(t);
    if (!s) return;
    s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    const before = s.h.installed();
    const broken = [...s.files];
    const i = caddyIndex();
    broken[i] = broken[i]!.replace(/^(\S.*\{)$/m, "$1\n\t# changed too");
    broken[appIndex()] = broken[appIndex()]!.replace("[Container]\n", "[Container]\nPublishPorts=3000:3000\n");
    const r = s.h.deploy(broken, [NEW_TOKEN, APP_SECRET]);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(`edgeplane: ${s.h.spec.unitDir} failed validation; nothing of pod grafana changed:`), r.stderr);
    assert.match(r.stderr, /PublishPorts/);
    assert.doesNotMatch(r.stderr, /edgeplane-stage/, "the message names installed paths, not the staging folder");
    assert.deepEqual(s.h.installed(), before, "not even the valid Caddyfile was installed");
    assert.equal(s.h.secret("grafana-cf-api-token"), TOKEN, "nor the new token");
    assert.deepEqual(r.log, []);
  });

  it("refuses a Caddyfile Caddy rejects without printing the token, even when Caddy quotes it", (t) => {
    const s = setup(t);
    if (!s) return;
    s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    // caddy-dns/cloudflare quotes a token it finds malformed in its error.
    const malformed = "tooShortToBeAToken";
    const r = s.h.deploy(s.files, [malformed, APP_SECRET]);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(`edgeplane: ${s.h.spec.caddyfile} failed validation; nothing of pod grafana changed:`), r.stderr);
    assert.match(r.stderr, /API token '\[token\]' appears invalid/);
    assert.ok(!r.stderr.includes(malformed));
    assert.equal(s.h.secret("grafana-cf-api-token"), TOKEN);
  });

  it("removes units the pod no longer has and secrets it no longer uses, and restarts it", (t) => {
    const s = setup(t);
    if (!s) return;
    s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    const stale = path.join(s.h.spec.unitDir, "grafana-old.container");
    fs.writeFileSync(stale, "[Container]\nImage=x\n");
    fs.writeFileSync(path.join(s.h.state, "secrets", "grafana-old-secret"), "x");
    const r = s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!fs.existsSync(stale));
    assert.equal(s.h.secret("grafana-old-secret"), undefined);
    assert.deepEqual(r.log, ["secret-rm grafana-old-secret", "daemon-reload", "restart grafana-pod.service"]);
  });

  it("removes the pod's units, files and secrets on delete, and keeps its home", (t) => {
    const s = setup(t);
    if (!s) return;
    s.h.deploy(s.files, [TOKEN, APP_SECRET]);
    s.h.spec.files.forEach((f) => fs.writeFileSync(`${f.path}.edgeplane-prev`, "old"));
    const r = s.h.remove();
    assert.equal(r.code, 0);
    assert.deepEqual(s.h.installed(), {});
    assert.ok(!s.h.spec.files.some((f) => fs.existsSync(`${f.path}.edgeplane-prev`)));
    assert.deepEqual(r.log, [
      "stop grafana-pod.service",
      "daemon-reload",
      "secret-rm grafana-cf-api-token",
      "secret-rm grafana-gf-security-secret-key",
    ]);
    assert.ok(fs.existsSync(s.h.home));
  });
});

describe("a pod moved to another host", () => {
  it("is removed from its old host, but not from a machine where it now belongs to another host name", (t) => {
    const quadlet = requireTool(t, "quadlet");
    const caddy = requireTool(t, "caddy-cloudflare");
    if (!quadlet || !caddy) return;
    const h = host(fleet, grafana, GRAFANA_SECRETS, { quadlet, caddy });
    h.deploy(
      renderPodFiles(fleet, grafana).map((f) => f.content),
      [TOKEN, APP_SECRET],
    );
    // The same machine deployed under a new name (a renamed host key): the old name's
    // removal, which the engine runs after the new deploy, must leave the pod alone.
    const renamed = h.remove("old-name");
    assert.equal(renamed.code, 0);
    assert.match(renamed.stdout, /pod grafana here now belongs to host edge; left in place/);
    assert.deepEqual(renamed.log, []);
    assert.equal(Object.keys(h.installed()).length, h.spec.files.length);
    const removed = h.remove();
    assert.deepEqual(removed.log[0], "stop grafana-pod.service");
    assert.deepEqual(h.installed(), {});
  });
});

describe("a Caddyfile that needs a module the pod's image lacks is refused on the host", () => {
  // `caddy-cloudflare` has the default image's modules (no rate_limit), `caddy` those of
  // an image built from images/caddy/Containerfile.
  const limited: Service = { ...grafana, auth: { ...grafana.auth!, rateLimit: { events: 60, window: "1m" } } };
  const model = (image: string): Model => ({
    ...fleet,
    images: { ...fleet.images, caddy: image },
    services: fleet.services.map((s) => (s.name === "grafana" ? limited : s)),
  });
  const deploy = (
    t: Parameters<typeof requireTool>[0],
    platform: Model,
    service: Service,
    caddyTool: "caddy" | "caddy-cloudflare",
  ) => {
    const quadlet = requireTool(t, "quadlet");
    const caddy = requireTool(t, caddyTool);
    if (!quadlet || !caddy) return undefined;
    const secrets = GRAFANA_SECRETS.filter((s) => service.name === "grafana" || s.onChange === "reload").map((s) => ({
      ...s,
      name: s.name.replace("grafana", service.name),
    }));
    const h = host(platform, service, secrets, { quadlet, caddy });
    const values = secrets.map((s) => (s.onChange === "reload" ? TOKEN : APP_SECRET));
    return {
      h,
      r: h.deploy(
        renderPodFiles(platform, service).map((f) => f.content),
        values,
      ),
    };
  };

  it("refuses auth.rateLimit with the default image, naming the module and the image", (t) => {
    const d = deploy(t, model(DEFAULT_CADDY_IMAGE), limited, "caddy-cloudflare");
    if (!d) return;
    assert.notEqual(d.r.code, 0);
    assert.ok(
      d.r.stderr.includes(
        `edgeplane: the Caddyfile needs the Caddy module ${RATE_LIMIT_MODULE}, which the image ${DEFAULT_CADDY_IMAGE} does not have`,
      ),
      d.r.stderr,
    );
    assert.deepEqual(d.h.installed(), {});
  });

  it("installs it with an image that has the module", (t) => {
    const d = deploy(t, model("ghcr.io/example/caddy-ratelimit:2.11.7"), limited, "caddy");
    if (!d) return;
    assert.equal(d.r.code, 0, d.r.stderr);
    assert.equal(Object.keys(d.h.installed()).length, d.h.spec.files.length);
  });

  it("does not ask a pod without a rate limit for the module", (t) => {
    const plain = model(DEFAULT_CADDY_IMAGE);
    const pgadmin = fleet.services.find((s) => s.name === "pgadmin")!;
    const d = deploy(t, plain, pgadmin, "caddy-cloudflare");
    if (!d) return;
    assert.equal(d.r.code, 0, d.r.stderr);
    assert.doesNotMatch(podDeployScript(d.h.spec), /list-modules/);
  });
});
