/**
 * The host refuses, by name, a Caddyfile that needs a Caddy module the pod's image does
 * not have. The validator the Caddyfile's install runs (components/pod, caddyValidator)
 * is run as it is, with stand-ins for sudo and for podman; the stand-in podman runs a
 * real Caddy in place of the image: `caddy-cloudflare` has the default image's modules
 * (no rate_limit), `caddy` those of an image built from images/caddy/Containerfile.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { caddyValidator } from "../components/pod";
import { RATE_LIMIT_MODULE, renderCaddyfile } from "../components/pod/render/caddyfile";
import { installScript } from "../components/remote/script";
import { DEFAULT_CADDY_IMAGE } from "../model/caddy-version";
import type { Model, Service } from "../model/types";
import { fakeBin } from "./support/fakebin";
import { fleet } from "./fixtures/models";
import { haveTool, toolPath } from "./support/tools";
import { PLACEHOLDER_CF_TOKEN } from "./support/validators";

const bin = fakeBin();
// podman run --rm --network none [--secret S] [-v FILE:/etc/caddy/Caddyfile:ro,Z] IMAGE caddy ARGS…:
// runs $TEST_CADDY ARGS…, with the mounted file in place of /etc/caddy/Caddyfile.
fs.writeFileSync(
  path.join(bin, "podman"),
  `#!/bin/sh
[ "$1" = run ] || exit 2
shift
config=
while [ $# -gt 0 ]; do
  case "$1" in
    --rm) shift ;;
    --network|--secret) shift 2 ;;
    -v) config="\${2%%:/etc/caddy/Caddyfile*}"; shift 2 ;;
    *) break ;;
  esac
done
shift 2
if [ "$1" = validate ]; then exec "$TEST_CADDY" validate --adapter caddyfile --config "$config"; fi
exec "$TEST_CADDY" "$@"
`,
  { mode: 0o755 },
);

const grafana = fleet.services.find((s) => s.name === "grafana")!;
const limited: Service = { ...grafana, auth: { ...grafana.auth!, rateLimit: { events: 60, window: "1m" } } };
const model = (image: string): Model => ({
  ...fleet,
  images: { ...fleet.images, caddy: image },
  services: fleet.services.map((s) => (s.name === "grafana" ? limited : s)),
});

/** Installs the Caddyfile of `service` into a scratch folder with its real validator. */
function install(platform: Model, service: Service, caddy: string) {
  const target = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-caddy-modules-")), "Caddyfile");
  const script = installScript({
    path: target,
    owner: "root",
    mode: "0644",
    description: "Caddyfile",
    validate: caddyValidator(platform, service),
  });
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-caddy-home-"));
  const r = spawnSync("sh", ["-c", script], {
    input: renderCaddyfile(platform, service),
    encoding: "utf8",
    env: {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: home,
      TEST_CADDY: caddy,
      CF_API_TOKEN: PLACEHOLDER_CF_TOKEN,
      XDG_DATA_HOME: home,
      XDG_CONFIG_HOME: home,
    },
  });
  return { code: r.status, stderr: r.stderr, installed: fs.existsSync(target) };
}

describe(
  "a Caddyfile that needs a module the pod's image lacks is refused on the host",
  { skip: !(haveTool("caddy") && haveTool("caddy-cloudflare")) && "caddy and caddy-cloudflare are not built" },
  () => {
    it("refuses auth.rateLimit with the default image, naming the module and the image", () => {
      const r = install(model(DEFAULT_CADDY_IMAGE), limited, toolPath("caddy-cloudflare")!);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /failed validation; the installed file is unchanged/);
      assert.ok(
        r.stderr.includes(
          `edgeplane: the Caddyfile needs the Caddy module ${RATE_LIMIT_MODULE}, which the image ${DEFAULT_CADDY_IMAGE} does not have`,
        ),
        r.stderr,
      );
      assert.equal(r.installed, false);
    });

    it("installs it with an image that has the module", () => {
      const r = install(model("ghcr.io/example/caddy-ratelimit:2.11.7"), limited, toolPath("caddy")!);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.installed, true);
    });

    it("does not ask a pod without a rate limit for the module", () => {
      const plain = model(DEFAULT_CADDY_IMAGE);
      const r = install(plain, fleet.services.find((s) => s.name === "pgadmin")!, toolPath("caddy-cloudflare")!);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(caddyValidator(plain, grafana), /list-modules/);
    });
  },
);
