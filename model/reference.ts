/**
 * The config reference, derived from the schema (model/schema.ts): one entry per key
 * with its type, whether it is required, its default and its description. Rendered as
 * docs/config-reference.md and as the `config:` block of Pulumi.yaml by
 * `npm run docs:config` (scripts/config-docs.ts); test/config-reference.test.ts fails
 * when either file drifts from the schema.
 */
import YAML from "yaml";
import { z } from "zod";
import { unwrap } from "./keys";
import { configSchema, SECRET_KEYS, typeNameOf } from "./schema";

export interface ReferenceEntry {
  /** Key path below `edgeplane:`, with `<name>` for map keys: `services.<name>.limits.burst`. */
  readonly path: string;
  readonly type: string;
  /** Required when its parent is set (for a top-level key: always). */
  readonly required: boolean;
  /** The value used when the key is not set, if there is one. */
  readonly default?: unknown;
  readonly description: string;
  readonly secret: boolean;
}

/** Every documented key, depth first in schema order. */
export function configReference(): ReferenceEntry[] {
  const entries: ReferenceEntry[] = [];
  const visit = (schema: z.ZodTypeAny, path: string, mapKey: string) => {
    entries.push(entry(schema, path));
    const inner = unwrap(schema);
    if (inner instanceof z.ZodObject) {
      for (const [key, child] of Object.entries(inner.shape as Record<string, z.ZodTypeAny>))
        visit(child, `${path}.${key}`, "name");
    } else if (inner instanceof z.ZodRecord && unwrap(inner.valueSchema) instanceof z.ZodObject) {
      visit(inner.valueSchema, `${path}.<${mapKey}>`, mapKey);
    } else if (inner instanceof z.ZodArray && unwrap(inner.element) instanceof z.ZodObject) {
      const element = unwrap(inner.element) as z.AnyZodObject;
      for (const [key, child] of Object.entries(element.shape as Record<string, z.ZodTypeAny>))
        visit(child, `${path}[].${key}`, "name");
    }
  };
  for (const [key, schema] of Object.entries(configSchema.shape as Record<string, z.ZodTypeAny>)) {
    // The containers of a service are named by container, its records by service.
    visit(schema, key, key === "adopt" ? "service" : "name");
  }
  return entries.map((e) =>
    e.path.includes(".containers.<name>") ? { ...e, path: e.path.replace(".containers.<name>", ".containers.<container>") } : e,
  );
}

function entry(schema: z.ZodTypeAny, path: string): ReferenceEntry {
  let required = true;
  let defaultValue: unknown;
  for (let s = schema; ; ) {
    if (s instanceof z.ZodOptional) required = false;
    else if (s instanceof z.ZodDefault) {
      required = false;
      // The value as the program sees it: inner defaults filled in.
      defaultValue = s.parse(undefined);
    }
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else if (s instanceof z.ZodDefault) s = s.removeDefault();
    else break;
  }
  const key = path.split(".").pop()!;
  return {
    path,
    type: typeName(schema),
    required,
    ...(defaultValue !== undefined ? { default: defaultValue } : {}),
    description: schema.description ?? "",
    secret: !path.includes(".") && SECRET_KEYS.has(key),
  };
}

function typeName(schema: z.ZodTypeAny): string {
  // A named type may sit inside wrappers, or be a wrapper itself (a refined string).
  for (let s = schema; ; ) {
    const known = typeNameOf(s);
    if (known) return known;
    const next = unwrapOnce(s);
    if (next === s) break;
    s = next;
  }
  const inner = unwrap(schema);
  if (inner instanceof z.ZodString) return "string";
  if (inner instanceof z.ZodBoolean) return "boolean";
  if (inner instanceof z.ZodNumber) {
    const min = inner.minValue;
    const max = inner.maxValue;
    return min !== null && max !== null ? `integer ${min}–${max}` : "integer";
  }
  if (inner instanceof z.ZodEnum) return (inner.options as string[]).map((o) => `"${o}"`).join(" | ");
  if (inner instanceof z.ZodArray) return `list of ${plural(typeName(inner.element))}`;
  if (inner instanceof z.ZodRecord) {
    const value = unwrap(inner.valueSchema);
    return value instanceof z.ZodObject ? "map of name → object" : `map of name → ${typeName(inner.valueSchema)}`;
  }
  if (inner instanceof z.ZodObject) return "object";
  if (inner instanceof z.ZodUnion) return (inner.options as z.ZodTypeAny[]).map(typeName).join(" | ");
  return "any";
}

const plural = (type: string) =>
  type === "address or CIDR range"
    ? "addresses or CIDR ranges"
    : /^(string|object|port|image reference|DNS name)$/.test(type)
      ? `${type}s`
      : type;

function unwrapOnce(s: z.ZodTypeAny): z.ZodTypeAny {
  if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) return s.unwrap();
  if (s instanceof z.ZodDefault) return s.removeDefault();
  if (s instanceof z.ZodEffects) return s.innerType();
  if (s instanceof z.ZodPipeline) return s._def.in;
  return s;
}

/** Markdown for docs/config-reference.md (before prettier). */
export function renderReferenceMarkdown(entries: readonly ReferenceEntry[]): string {
  const out: string[] = [
    "# Config reference",
    "",
    "<!-- Generated from model/schema.ts by `npm run docs:config`. Do not edit: change the schema's descriptions. -->",
    "",
    "Every key lives under `edgeplane:` in `Pulumi.<stack>.yaml`. Durations are written in seconds with an `s`",
    '(`"30s"`, `"0.5s"`), the form Envoy reads. The whole config is validated before anything is created: an',
    "invalid one stops `pulumi preview`, `pulumi up`, `npm run plan` and `npm run preflight` with every problem",
    'listed by key path, for example `edgeplane:services.grafana.host: unknown host "edg" (hosts: "edge", "gpu")`.',
    "A key edgeplane does not know is an error that suggests the closest known one",
    "(`edgeplane:tailscal: unknown key; did you mean edgeplane:tailscale?`), so a typo never silently does nothing.",
    "",
    "A key marked _required_ must be set whenever the key that contains it is set.",
    "",
  ];
  for (const e of entries) {
    const top = !e.path.includes(".");
    if (top) out.push(`## \`edgeplane:${e.path}\``, "", e.description, "");
    const facts = [
      e.type,
      e.required ? "required" : e.default !== undefined ? `default ${inlineValue(e.default)}` : "optional",
      ...(e.secret ? ["secret: set with `pulumi config set --secret`"] : []),
    ];
    if (top) out.push(`_${facts.join("; ")}_`, "");
    else out.push(`- **\`${e.path}\`** (${facts.join("; ")}): ${e.description}`);
    const next = entries[entries.indexOf(e) + 1];
    if (!top && (!next || !next.path.includes("."))) out.push("");
  }
  return out.join("\n");
}

function inlineValue(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === "{}" || text === "[]" || text.length <= 60) return `\`${text}\``;
  return "as listed below";
}

/**
 * The `config:` block of Pulumi.yaml (before prettier). The Pulumi CLI treats a key
 * declared without a default as required ("Stack '…' is missing configuration value"),
 * so optional keys without a default are listed in comments, not declared.
 */
export function renderPulumiConfig(entries: readonly ReferenceEntry[]): string {
  const tops = entries.filter((e) => !e.path.includes("."));
  const declared: Record<string, Record<string, unknown>> = {};
  const undeclared: ReferenceEntry[] = [];
  for (const e of tops) {
    if (!e.required && e.default === undefined) {
      undeclared.push(e);
      continue;
    }
    declared[`edgeplane:${e.path}`] = {
      ...(e.type === "string" || e.type === "DNS name" ? { type: "string" } : {}),
      ...(e.secret ? { secret: true } : {}),
      description: pulumiDescription(e, entries),
      ...(e.default !== undefined ? { default: e.default } : {}),
    };
  }
  const header = [
    "# Generated from model/schema.ts by `npm run docs:config`: do not edit below this line.",
    "# Every key edgeplane reads, with its sub-keys; the full reference is docs/config-reference.md.",
    "# The whole config is validated before anything is created, and an unknown edgeplane:* key is an error.",
    "#",
    "# The Pulumi CLI treats a key declared here without a `default` as required: a stack that lacks it",
    "# is refused before the program runs (sdk/go/common/workspace/config.go; project file reference:",
    "# https://www.pulumi.com/docs/iac/concepts/projects/project-file/). So a key is declared when it is",
    "# required or has a default; an optional key without one is listed here instead, and the CLI passes",
    "# it through unchanged when a stack sets it:",
    "#",
    ...undeclared.flatMap((e) => wrapComment(`edgeplane:${e.path}: ${pulumiDescription(e, entries)}`, "#   ", "#     ")),
  ];
  return [...header, YAML.stringify({ config: declared }, { lineWidth: 0 }).trimEnd(), ""].join("\n");
}

function pulumiDescription(top: ReferenceEntry, entries: readonly ReferenceEntry[]): string {
  const childrenOf = (parent: string) =>
    entries.filter((e) => e.path.startsWith(`${parent}.`) && !e.path.slice(parent.length + 1).includes("."));
  const children = childrenOf(top.path);
  // A map (hosts, services): list the keys of each entry instead of "<name>".
  const [only] = children;
  if (children.length === 1 && only && /^<.+>$/.test(only.path.slice(top.path.length + 1))) {
    const keys = childrenOf(only.path).map((e) => e.path.slice(only.path.length + 1));
    return `${top.description} ${only.description} Keys of each: ${keys.join(", ")}.`;
  }
  return children.length > 0
    ? `${top.description} Keys: ${children.map((e) => e.path.slice(top.path.length + 1)).join(", ")}.`
    : top.description;
}

function wrapComment(text: string, first: string, rest: string, width = 110): string[] {
  const lines: string[] = [];
  let line = first;
  for (const word of text.split(" ")) {
    if (line.length + word.length > width && line.trim() !== "#") {
      lines.push(line.trimEnd());
      line = rest;
    }
    line += `${word} `;
  }
  lines.push(line.trimEnd());
  return lines;
}
