/**
 * The config schema is the one source of the config's documentation: Pulumi.yaml's
 * `config:` block and docs/config-reference.md are generated from it
 * (`npm run docs:config`), and must not drift from it or from each other.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { configDocs, REFERENCE_FILE } from "../model/docs";
import { buildModel, CONFIG_KEYS } from "../model";
import { configReference } from "../model/reference";
import { rawStackConfig } from "./fixtures/models";

const root = path.join(__dirname, "..");
const reference = configReference();

describe("config reference", () => {
  it("Pulumi.yaml and the reference on disk are what the schema generates (else: npm run docs:config)", async () => {
    for (const [file, text] of Object.entries(await configDocs(root))) {
      assert.equal(fs.readFileSync(path.join(root, file), "utf8"), text, `${file} is stale: run npm run docs:config`);
    }
  });

  it("describes every key, nested ones included", () => {
    const undocumented = reference.filter((e) => e.description.trim() === "").map((e) => e.path);
    assert.deepEqual(undocumented, []);
    // Spot checks that nesting reaches the leaves of hosts, services and their maps.
    for (const key of [
      "hosts.<name>.ssh.port",
      "services.<name>.l7.healthCheck.interval",
      "services.<name>.containers.<container>.image",
    ])
      assert.ok(
        reference.some((e) => e.path === key),
        key,
      );
  });

  it("lists every top-level key in the reference, under its own heading", () => {
    const markdown = fs.readFileSync(path.join(root, REFERENCE_FILE), "utf8");
    for (const key of CONFIG_KEYS) assert.match(markdown, new RegExp(`^## \`edgeplane:${key}\`$`, "m"));
  });

  it("declares in Pulumi.yaml no optional key without a default (the Pulumi CLI would require it)", () => {
    // The CLI reports "Stack '…' is missing configuration value" for every key of the
    // project's namespace declared without a default (sdk/go/common/workspace/config.go).
    const project = YAML.parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as {
      config: Record<string, { default?: unknown; secret?: boolean }>;
    };
    const requiredByPulumi = Object.entries(project.config)
      .filter(([, decl]) => decl.default === undefined)
      .map(([key]) => key.replace(/^edgeplane:/, ""))
      .sort();
    const requiredBySchema = reference
      .filter((e) => !e.path.includes(".") && e.required)
      .map((e) => e.path)
      .sort();
    assert.deepEqual(requiredByPulumi, requiredBySchema);
    assert.equal(project.config["edgeplane:sshPrivateKey"]?.secret, true);
  });

  it("gives Pulumi.yaml's defaults exactly the values the model falls back on", () => {
    const project = YAML.parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as {
      config: Record<string, { default?: unknown }>;
    };
    for (const e of reference.filter((r) => !r.path.includes(".") && r.default !== undefined))
      assert.deepEqual(project.config[`edgeplane:${e.path}`]?.default, e.default, e.path);
    // And they are what the model uses for a stack that sets none of those keys.
    const model = buildModel(rawStackConfig({}));
    assert.deepEqual(project.config["edgeplane:envoy"]?.default, model.envoy);
    assert.deepEqual(project.config["edgeplane:images"]?.default, model.images);
    assert.deepEqual(project.config["edgeplane:tls"]?.default, model.tls);
  });
});
