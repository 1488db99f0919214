/**
 * Turns the recorded registrations into the offline plan: every file each host would
 * receive, byte for byte, and plan.json.
 */
import { SECRET_PLACEHOLDER } from "./config";
import type { RecordedResource } from "./run";

export interface PlannedFile {
  readonly host: string;
  readonly path: string;
  readonly owner: string;
  readonly mode: string;
  readonly sha256: string;
  readonly service: string | null;
  readonly content: string;
}

export interface Plan {
  readonly project: string;
  readonly stack: string;
  readonly resources: {
    type: string;
    name: string;
    parent: string | null;
    inputs: Record<string, unknown>;
    import?: string;
  }[];
  readonly files: Omit<PlannedFile, "content">[];
}

const FILE_TYPE = "edgeplane:index:RemoteFile";
/** A pod lists its files, content included, in its own inputs (components/pod). */
const POD_TYPE = "edgeplane:index:SidecarPod";

/** A pod's files as its component lists them. */
function podFiles(pod: RecordedResource): PlannedFile[] {
  const files = pod.inputs.files;
  if (!Array.isArray(files)) throw new Error(`internal: pod ${pod.name} lists no files`);
  return files.map((f: Record<string, unknown>) => {
    if (typeof f.content !== "string" || f.content === "[unknown]" || f.content === SECRET_PLACEHOLDER)
      throw new Error(
        `internal: file ${String(f.path)} of pod ${pod.name} has no plain content; rendered files never carry a secret`,
      );
    return {
      host: String(f.host),
      path: String(f.path),
      owner: String(f.owner),
      mode: String(f.mode),
      sha256: String(f.sha256),
      service: typeof f.service === "string" ? f.service : null,
      content: f.content,
    };
  });
}

/** plan.json lists a pod's files without their content, which is under hosts/. */
function withoutContent(r: RecordedResource): Record<string, unknown> {
  if (r.type !== POD_TYPE || !Array.isArray(r.inputs.files)) return r.inputs;
  return { ...r.inputs, files: r.inputs.files.map(({ content: _content, ...rest }: Record<string, unknown>) => rest) };
}

export function plannedFiles(records: readonly RecordedResource[]): PlannedFile[] {
  const byName = new Map(records.map((r) => [`${r.type}::${r.name}`, r]));
  const files = records
    .filter((r) => r.type === FILE_TYPE)
    .map((r): PlannedFile => {
      const install = byName.get(`command:remote:Command::${r.name}-install`);
      const content = install?.inputs.stdin;
      if (typeof content !== "string") throw new Error(`internal: file ${r.name} has no content`);
      if (content === "[unknown]")
        throw new Error(`internal: file ${String(r.inputs.path)} has content known only after up; rendered files never may`);
      if (content === SECRET_PLACEHOLDER)
        throw new Error(`internal: file ${String(r.inputs.path)} carries a secret; rendered files never may`);
      const i = r.inputs as Record<string, string | null>;
      return {
        host: String(i.host),
        path: String(i.path),
        owner: String(i.owner),
        mode: String(i.mode),
        sha256: String(i.sha256),
        service: i.service ?? null,
        content,
      };
    })
    .concat(records.filter((r) => r.type === POD_TYPE).flatMap(podFiles));
  const seen = new Set<string>();
  for (const f of files) {
    const key = `${f.host}:${f.path}`;
    if (seen.has(key)) throw new Error(`internal: two resources install ${f.path} on ${f.host}`);
    seen.add(key);
  }
  return files.sort((a, b) => cmp(a.host, b.host) || cmp(a.path, b.path));
}

export function buildPlan(
  project: string,
  stack: string,
  records: readonly RecordedResource[],
): { plan: Plan; files: PlannedFile[] } {
  const files = plannedFiles(records);
  const resources = [...records]
    .sort((a, b) => cmp(a.name, b.name) || cmp(a.type, b.type))
    .map((r) => ({
      type: r.type,
      name: r.name,
      parent: r.parent,
      inputs: sortKeys(withoutContent(r)) as Record<string, unknown>,
      // An adopted resource is imported by the first `up`, not created: say so in the plan.
      ...(r.importId ? { import: r.importId } : {}),
    }));
  return {
    plan: { project, stack, resources, files: files.map(({ content: _content, ...meta }) => meta) },
    files,
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Object keys sorted recursively, so plan.json bytes do not depend on registration order. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
