/**
 * The guides in docs/ name config keys, show stack snippets and give commands; an
 * operator copies them as written. These tests fail when a guide names a key the
 * program does not read, shows a snippet with one, shows a whole stack the model
 * rejects, or runs an npm script package.json does not have.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { z } from "zod";
import { tailnetPolicyProblems } from "../components/tailnet/render";
import { buildModel } from "../model";
import { hostSchema, serviceSchema, stackSchema } from "../model/schema";

const root = path.join(__dirname, "..");
const docsDir = path.join(root, "docs");
const docs = readdirSync(docsDir)
  .filter((f) => f.endsWith(".md"))
  .sort()
  .map((f) => ({ file: `docs/${f}`, text: readFileSync(path.join(docsDir, f), "utf8") }));

/** Keys index.ts reads outside the structured schema. */
const programKeys = { sshPrivateKey: z.string() };
/** Every `edgeplane:` key as the program reads it: hosts and services parsed entry by entry (model/index.ts). */
const configSchema = stackSchema.extend({
  ...programKeys,
  hosts: z.record(z.string(), hostSchema),
  services: z.record(z.string(), serviceSchema),
});

type Segment = string | number;

/** Strips the wrappers that do not change which keys a value has. */
function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) schema = schema.unwrap();
    else if (schema instanceof z.ZodDefault) schema = schema._def.innerType;
    else if (schema instanceof z.ZodEffects) schema = schema.innerType();
    else if (schema instanceof z.ZodPipeline) schema = schema._def.in;
    else return schema;
  }
}

/** Why `segments` is not a key path of `schema`, or undefined when it is. */
function pathProblem(schema: z.ZodTypeAny, segments: readonly Segment[]): string | undefined {
  const s = unwrap(schema);
  if (segments.length === 0) return undefined;
  const [head, ...rest] = segments;
  if (s instanceof z.ZodUnknown || s instanceof z.ZodAny) return undefined;
  if (s instanceof z.ZodObject) {
    if (typeof head !== "string" || !Object.hasOwn(s.shape, head)) return `unknown key ${JSON.stringify(head)}`;
    return pathProblem(s.shape[head], rest);
  }
  if (s instanceof z.ZodRecord) return pathProblem(s.valueSchema, rest);
  if (s instanceof z.ZodArray) {
    if (typeof head !== "number") return `${JSON.stringify(head)} under a list`;
    return pathProblem(s.element, rest);
  }
  return `${JSON.stringify(head)} under a value that has no keys`;
}

/**
 * `edgeplane:hosts.<name>.ssh.hostKey` in prose and commands; `<…>` stands for a name.
 * A key quoted in an `unknown key` message is a deliberate mistake, and
 * `edgeplane:index:<Type>` is a Pulumi type token, not a config key.
 */
function keysInText(text: string): string[] {
  const keys = [...text.matchAll(/edgeplane:([A-Za-z][A-Za-z0-9_.<>-]*)(?![A-Za-z0-9_.<>-]|: unknown key)/g)]
    .map((m) => m[1]!.replace(/\.+$/, ""))
    .filter((k) => k !== "index");
  return [...new Set(keys)];
}

/** The YAML code blocks of a markdown text. */
function yamlBlocks(text: string): string[] {
  return [...text.matchAll(/^```ya?ml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** The `edgeplane:*` entries of a snippet: a whole stack file (`config:`) or a part of one. */
function edgeplaneEntries(doc: unknown): Record<string, unknown> {
  const top = (doc && typeof doc === "object" && "config" in doc ? (doc as { config: unknown }).config : doc) ?? {};
  return Object.fromEntries(
    Object.entries(top as Record<string, unknown>)
      .filter(([k]) => k.startsWith("edgeplane:"))
      .map(([k, v]) => [k.slice("edgeplane:".length), v]),
  );
}

/** Every leaf path of a value: objects by key, lists by index. */
function leafPaths(value: unknown, prefix: Segment[] = []): Segment[][] {
  if (Array.isArray(value)) {
    return value.length === 0 ? [prefix] : value.flatMap((v, i) => leafPaths(v, [...prefix, i]));
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value);
    return entries.length === 0 ? [prefix] : entries.flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
  }
  return [prefix];
}

const show = (segments: readonly Segment[]) => segments.map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`)).join("");

describe("docs/", () => {
  it("has the guides", () => {
    assert.ok(docs.some((d) => d.file === "docs/first-deploy.md"));
    assert.ok(docs.some((d) => d.file === "docs/operations.md"));
  });

  it("names only config keys the program reads", () => {
    const problems: string[] = [];
    let checked = 0;
    for (const { file, text } of docs) {
      for (const key of keysInText(text)) {
        checked++;
        const problem = pathProblem(configSchema, key.split("."));
        if (problem) problems.push(`${file}: edgeplane:${key}: ${problem}`);
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(checked > 10, `expected the guides to name config keys, found ${checked}`);
  });

  it("shows stack snippets whose every key the program reads", () => {
    const problems: string[] = [];
    let snippets = 0;
    for (const { file, text } of docs) {
      for (const block of yamlBlocks(text)) {
        const entries = edgeplaneEntries(YAML.parse(block));
        if (Object.keys(entries).length === 0) continue;
        snippets++;
        for (const segments of leafPaths(entries)) {
          const problem = pathProblem(configSchema, segments);
          if (problem) problems.push(`${file}: edgeplane:${show(segments).slice(1)}: ${problem}`);
        }
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(snippets >= 3, `expected stack snippets in the guides, found ${snippets}`);
  });

  it("shows whole stacks the model accepts", () => {
    let stacks = 0;
    for (const { file, text } of docs) {
      for (const block of yamlBlocks(text)) {
        const doc = YAML.parse(block);
        if (!doc || typeof doc !== "object" || !("config" in doc)) continue;
        stacks++;
        const raw = edgeplaneEntries(doc);
        const model = (() => {
          try {
            return buildModel(raw);
          } catch (err) {
            assert.fail(`${file}: the stack in it is invalid: ${(err as Error).message}`);
          }
        })();
        if (model.tailscale) {
          assert.deepEqual(tailnetPolicyProblems(model, model.tailscale.policy, model.tailscale.testUsers), [], file);
        }
      }
    }
    assert.ok(stacks >= 1, "expected first-deploy.md to show a whole stack");
  });

  it("runs only npm scripts package.json has", () => {
    const scripts = Object.keys(JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).scripts as object);
    const problems: string[] = [];
    for (const { file, text } of docs) {
      for (const [, name] of text.matchAll(/npm run ([a-z][\w:-]*)/g)) {
        if (!scripts.includes(name!)) problems.push(`${file}: npm run ${name}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it("catches a key the program does not read", () => {
    // The checks above pass only if they can fail: a misspelt key, a key under a
    // value, and a list used as a map are each reported.
    assert.match(pathProblem(configSchema, ["tailscale", "adpot"]) ?? "", /unknown key "adpot"/);
    assert.match(pathProblem(configSchema, ["domain", "name"]) ?? "", /no keys/);
    assert.match(pathProblem(configSchema, ["services", "x", "publicPaths", "a"]) ?? "", /under a list/);
    assert.equal(pathProblem(configSchema, ["hosts", "<name>", "ssh", "hostKey"]), undefined);
    assert.equal(pathProblem(configSchema, ["tailscale", "policy", "grants", 0, "src", 0]), undefined);
    assert.deepEqual(keysInText("set `edgeplane:tailscale.adopt`, not `edgeplane:tailscal`."), ["tailscale.adopt", "tailscal"]);
    assert.deepEqual(keysInText("(`edgeplane:tailscal: unknown key; did you mean edgeplane:tailscale?`)"), ["tailscale"]);
  });
});
