/**
 * Pulumi.yaml's `config:` block against what the program reads. The real CLI refuses a
 * stack that lacks a key declared there without a default, before the program runs, so
 * a declared key must be one the program requires, or carry a default that means the
 * same as leaving it out; the offline plan refuses exactly what the CLI refuses.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import YAML from "yaml";
import { buildModel, CONFIG_KEYS, ConfigError } from "../model";
import { loadStackConfig } from "../plan/config";
import { rawStackConfig } from "./fixtures/models";

const root = path.join(__dirname, "..");
const projectText = fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8");
const declared = (YAML.parse(projectText) as { config: Record<string, { default?: unknown }> }).config;
const bare = (key: string) => key.replace(/^edgeplane:/, "");

/** The smallest config the contract allows: one ingress host, one service. */
function minimalConfig(): Record<string, unknown> {
  return rawStackConfig({ whoami: { host: "edge", image: "docker.io/traefik/whoami:v1.10.3", port: 80, caddyPort: 10443 } });
}

function problemsWithout(key: string): readonly string[] {
  const config = minimalConfig();
  delete config[key];
  try {
    buildModel(config);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe("Pulumi.yaml's config block", () => {
  it("declares or documents every key the program reads", () => {
    for (const key of [...CONFIG_KEYS, "sshPrivateKey"]) {
      assert.ok(
        `edgeplane:${key}` in declared || projectText.includes(`#   edgeplane:${key}:`),
        `edgeplane:${key} is neither declared nor documented in Pulumi.yaml`,
      );
    }
  });

  it("declares without a default only keys the program requires", () => {
    const required = Object.entries(declared)
      .filter(([, decl]) => decl.default === undefined)
      .map(([key]) => bare(key));
    for (const key of required) {
      if (key === "sshPrivateKey") {
        // Read with requireSecret in index.ts, not part of the model.
        assert.match(fs.readFileSync(path.join(root, "index.ts"), "utf8"), /config\.requireSecret\("sshPrivateKey"\)/);
        continue;
      }
      assert.deepEqual(problemsWithout(key), [`edgeplane:${key}: is required`]);
    }
  });

  it("gives every other declared key a default that means the same as leaving it out", () => {
    const withDefaults = Object.entries(declared).filter(([, decl]) => decl.default !== undefined);
    assert.ok(withDefaults.length > 0);
    for (const [key, decl] of withDefaults) {
      const without = minimalConfig();
      delete without[bare(key)];
      assert.deepEqual(buildModel({ ...without, [bare(key)]: decl.default }), buildModel(without), key);
    }
  });

  it("leaves keys whose absence is a choice undeclared, so a stack may omit them", () => {
    // A stack without edgeplane:tailscale does not own the tailnet policy; without
    // edgeplane:authentik it has no Authentik. Neither has a value meaning "absent".
    for (const key of ["authentik", "tailscale"]) {
      assert.ok(!(`edgeplane:${key}` in declared), `edgeplane:${key} must not be declared: the CLI would require it`);
      assert.deepEqual(problemsWithout(key), []);
    }
  });
});

describe("the offline plan's config loading", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-config-"));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const stackFile = (body: string) => {
    const file = path.join(dir, "Pulumi.test.yaml");
    fs.writeFileSync(file, body);
    return file;
  };

  it("refuses a stack missing a required key with the CLI's own message", () => {
    const file = stackFile("config:\n  edgeplane:domain: example.org\n");
    assert.throws(
      () => loadStackConfig(root, "test", file),
      new RegExp(
        "^PlanInputError: validating stack config: Stack 'test' is missing configuration values " +
          "'edgeplane:cloudflare', 'edgeplane:hosts', 'edgeplane:services' and 'edgeplane:sshPrivateKey'$",
      ),
    );
  });

  it("fills in the declared defaults, and leaves undeclared optional keys out", () => {
    const file = stackFile(
      YAML.stringify({
        config: {
          ...Object.fromEntries(Object.entries(minimalConfig()).map(([k, v]) => [`edgeplane:${k}`, v])),
          "edgeplane:sshPrivateKey": { secure: "v1:AAAA:x" },
        },
      }),
    );
    const { values } = loadStackConfig(root, "test", file);
    // Every declared default reaches the program as the CLI hands it over: JSON text.
    for (const [key, spec] of Object.entries(declared)) {
      if (spec.default === undefined) continue;
      assert.equal(values[key], JSON.stringify(spec.default), key);
    }
    assert.equal(values["edgeplane:images"], JSON.stringify(buildModel(minimalConfig()).images));
    assert.equal(values["edgeplane:adopt"], undefined);
    assert.equal(values["edgeplane:tailscale"], undefined);
    assert.equal(values["edgeplane:authentik"], undefined);
  });
});
