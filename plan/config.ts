/**
 * Reads a stack's config the way the Pulumi CLI would hand it to the program:
 * `Pulumi.yaml` defaults, overlaid with `Pulumi.<stack>.yaml`, structured values as
 * JSON text. Values the CLI would decrypt (`secure:`) become the literal `[secret]`:
 * the offline plan never has, and never needs, a real secret.
 */
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

export const SECRET_PLACEHOLDER = "[secret]";

/** A mistake of the caller's (missing stack file, …): reported as one line, no stack trace. */
export class PlanInputError extends Error {
  override name = "PlanInputError";
}

export interface StackConfig {
  readonly project: string;
  readonly stack: string;
  /** "namespace:key" → value as the program sees it (JSON text for structured values). */
  readonly values: Record<string, string>;
  /** Keys whose value is a secret. */
  readonly secretKeys: string[];
}

/** Replaces every `{secure: …}` with the placeholder; reports whether any was found. */
function maskSecure(value: unknown): { value: unknown; secret: boolean } {
  if (Array.isArray(value)) {
    const items = value.map(maskSecure);
    return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1 && entries[0]![0] === "secure") return { value: SECRET_PLACEHOLDER, secret: true };
    const masked = entries.map(([k, v]) => [k, maskSecure(v)] as const);
    return { value: Object.fromEntries(masked.map(([k, m]) => [k, m.value])), secret: masked.some(([, m]) => m.secret) };
  }
  return { value, secret: false };
}

/**
 * Parses a YAML file; a syntax error is reported as `file:line:column: reason` with the
 * offending line, not as a stack trace.
 */
export function parseYamlFile(file: string): unknown {
  try {
    return YAML.parse(fs.readFileSync(file, "utf8"), { prettyErrors: true });
  } catch (err) {
    if (!(err instanceof YAML.YAMLError)) throw err;
    const relative = path.relative(process.cwd(), file);
    const name = relative && !relative.startsWith("..") ? relative : file;
    const [line, col] = err.linePos ? [err.linePos[0].line, err.linePos[0].col] : [0, 0];
    // yaml's message is "<reason> at line L, column C:\n\n<excerpt>"; the position moves to the front.
    const [reason = err.message, ...excerpt] = err.message.split(/ at line \d+, column \d+:\n?/);
    throw new PlanInputError(
      `${name}:${line}:${col}: ${reason.trim()}${excerpt.length ? `\n${excerpt.join("").trimEnd()}` : ""}`,
    );
  }
}

/**
 * Loads `Pulumi.<stack>.yaml` from `root`, or `stackFile` when given (test stacks live
 * outside the project root but share its Pulumi.yaml).
 */
export function loadStackConfig(root: string, stack: string, stackFile = path.join(root, `Pulumi.${stack}.yaml`)): StackConfig {
  const projectFile = path.join(root, "Pulumi.yaml");
  if (!fs.existsSync(stackFile))
    throw new PlanInputError(`no stack config: ${path.relative(process.cwd(), stackFile) || stackFile} does not exist`);
  const projectDoc = parseYamlFile(projectFile) as {
    name: string;
    config?: Record<string, { default?: unknown }>;
  };
  const stackDoc = (parseYamlFile(stackFile) ?? {}) as { config?: Record<string, unknown> };
  const project = projectDoc.name;
  const qualify = (key: string) => (key.includes(":") ? key : `${project}:${key}`);

  const merged = new Map<string, unknown>();
  for (const [key, value] of Object.entries(stackDoc.config ?? {})) merged.set(qualify(key), value);
  // As the CLI does (sdk/go/common/workspace/config.go, mergeConfig): a key of the
  // project declared without a default is required, and a missing one fails the
  // stack before the program runs; otherwise the default fills in.
  const missing: string[] = [];
  for (const [key, decl] of Object.entries(projectDoc.config ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (merged.has(qualify(key))) continue;
    const fallback = decl && typeof decl === "object" ? decl.default : undefined;
    if (fallback !== undefined && fallback !== null) merged.set(qualify(key), fallback);
    else if (qualify(key).startsWith(`${project}:`)) missing.push(key);
  }
  if (missing.length > 0) {
    const quoted = missing.map((k) => `'${k}'`);
    const list = quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(", ")} and ${quoted.at(-1)}`;
    throw new PlanInputError(
      `validating stack config: Stack '${stack}' is missing configuration value${missing.length === 1 ? "" : "s"} ${list}`,
    );
  }

  const values: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, value] of [...merged].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const masked = maskSecure(value);
    values[key] = typeof masked.value === "string" ? masked.value : JSON.stringify(masked.value);
    if (masked.secret) secretKeys.push(key);
  }
  return { project, stack, values, secretKeys };
}
