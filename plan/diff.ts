/**
 * What a change does to a stack's offline plan, as a reviewer reads it on a pull
 * request: `npm run plan -- --stack <name> --diff <git-ref>`.
 *
 * Three layers, like the rest of the program: read two plan folders (I/O) → compare
 * them into a structured diff (pure) → render it as markdown, plain text or JSON
 * (pure). Planning a stack at a git ref (its own code and its own stack file) is the
 * one part that runs processes; it lives at the bottom of this file.
 *
 * Nothing here can leak a secret the plan itself does not: both sides are offline
 * plans, where every secret is already the literal "[secret]".
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { comparePlans, owners } from "./compare";
import { PlanInputError } from "./config";
import type { Plan } from "./manifest";

// ─── Reading plan folders ─────────────────────────────────────────────────────────

export interface FileMeta {
  readonly owner: string | null;
  readonly mode: string | null;
  /** The service the file belongs to; null for host-wide files. */
  readonly service: string | null;
}

/** One side of a comparison: a plan.json and the content of every file under hosts/. */
export interface PlanSnapshot {
  readonly resources: Plan["resources"];
  /** `host` + "\0" + absolute path on the host → metadata and content. */
  readonly files: ReadonlyMap<string, FileMeta & { readonly content: string }>;
}

/** A stack that has no plan on one side (no stack file there, or no plan script yet). */
export const EMPTY_PLAN: PlanSnapshot = { resources: [], files: new Map() };

const fileKey = (host: string, filePath: string) => `${host}\0${filePath}`;
const splitFileKey = (key: string) => {
  const at = key.indexOf("\0");
  return { host: key.slice(0, at), path: key.slice(at + 1) };
};

/**
 * Reads `<dir>/plan.json` and `<dir>/hosts/**`, as `npm run plan` writes them. Contents
 * come from the files on disk (what a host would receive); owner, mode and service from
 * plan.json. Lenient about fields older plans may lack, since the base side of a diff
 * may have been written by an older version of the plan script.
 */
export function readPlanFolder(dir: string): PlanSnapshot {
  const plan = JSON.parse(fs.readFileSync(path.join(dir, "plan.json"), "utf8")) as Partial<Plan>;
  const listed = new Map((plan.files ?? []).map((f) => [fileKey(f.host, f.path), f]));
  const files = new Map<string, FileMeta & { content: string }>();
  const hostsDir = path.join(dir, "hosts");
  const hosts = fs.existsSync(hostsDir) ? fs.readdirSync(hostsDir).sort() : [];
  for (const host of hosts) {
    const base = path.join(hostsDir, host);
    const entries = fs.readdirSync(base, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    for (const entry of entries) {
      const full = path.join(entry.parentPath, entry.name);
      const onHost = "/" + path.relative(base, full).split(path.sep).join("/");
      const meta = listed.get(fileKey(host, onHost));
      files.set(fileKey(host, onHost), {
        owner: meta?.owner ?? null,
        mode: meta?.mode ?? null,
        service: meta?.service ?? null,
        content: fs.readFileSync(full, "utf8"),
      });
    }
  }
  const resources = (plan.resources ?? []).map((r) => ({
    type: r.type,
    name: r.name,
    parent: r.parent ?? null,
    inputs: r.inputs ?? {},
  }));
  return { resources, files };
}

// ─── The structured diff ──────────────────────────────────────────────────────────

export type ChangeKind = "added" | "removed" | "changed";

export interface FileChange {
  readonly kind: ChangeKind;
  readonly host: string;
  readonly path: string;
  /** The file's service (after the change; before it for a removed file); null = host-wide. */
  readonly service: string | null;
  /** Owner, mode or service that changed while the file stayed (changed files only). */
  readonly metadata: {
    readonly field: "owner" | "mode" | "service";
    readonly before: string | null;
    readonly after: string | null;
  }[];
  readonly linesAdded: number;
  readonly linesRemoved: number;
  /** Unified-diff hunks (`@@ … @@` and their lines), without the `---`/`+++` header. */
  readonly hunks: string;
}

export interface InputChange {
  /** Dotted path of the input that differs (`connection.host`); `(parent)` for a moved resource. */
  readonly path: string;
  /** JSON text of the old and new value, only when both are short scalars. */
  readonly before?: string;
  readonly after?: string;
}

export interface ResourceChange {
  readonly kind: ChangeKind;
  readonly type: string;
  readonly name: string;
  /** The top-level component it sits under: a service's SidecarPod, the IngressHost, … */
  readonly component: string;
  /** What differs, for changed resources; empty otherwise. */
  readonly inputs: InputChange[];
}

export interface PlanDiff {
  /** Sorted by host, then path. */
  readonly files: FileChange[];
  /** Sorted by component, then name, then type. */
  readonly resources: ResourceChange[];
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const resourceKey = (r: { type: string; name: string }) => `${r.type}::${r.name}`;

/** Compares two plans: every file and every resource that was added, removed or changed. */
export function diffPlans(before: PlanSnapshot, after: PlanSnapshot): PlanDiff {
  const files: FileChange[] = [];
  const fileKeys = [...new Set([...before.files.keys(), ...after.files.keys()])].sort();
  for (const key of fileKeys) {
    const { host, path: filePath } = splitFileKey(key);
    const old = before.files.get(key);
    const now = after.files.get(key);
    const metadata: FileChange["metadata"][number][] = [];
    if (old && now) {
      for (const field of ["owner", "mode", "service"] as const) {
        if (old[field] !== now[field]) metadata.push({ field, before: old[field], after: now[field] });
      }
      if (old.content === now.content && metadata.length === 0) continue;
    }
    const text = unifiedHunks(old?.content ?? "", now?.content ?? "");
    files.push({
      kind: !old ? "added" : !now ? "removed" : "changed",
      host,
      path: filePath,
      service: (now ?? old)!.service,
      metadata,
      linesAdded: text.added,
      linesRemoved: text.removed,
      hunks: text.hunks,
    });
  }

  const changes = comparePlans(before, after);
  const oldByKey = new Map(before.resources.map((r) => [resourceKey(r), r]));
  const newByKey = new Map(after.resources.map((r) => [resourceKey(r), r]));
  const ownerOf = new Map([...owners(before), ...owners(after)]);
  // comparePlans looks at inputs only; a resource whose parent changed has a new URN,
  // which Pulumi treats as a replacement unless aliased: a reviewer must see it.
  const moved = [...newByKey.keys()].filter((k) => oldByKey.has(k) && oldByKey.get(k)!.parent !== newByKey.get(k)!.parent);
  const changed = [...new Set([...changes.changed, ...moved])];
  const resources: ResourceChange[] = [
    ...changes.added.map((k) => resourceChange("added", newByKey.get(k)!, [])),
    ...changes.removed.map((k) => resourceChange("removed", oldByKey.get(k)!, [])),
    ...changed.map((k) => {
      const old = oldByKey.get(k)!;
      const now = newByKey.get(k)!;
      const inputs = inputChanges(old.inputs, now.inputs, "");
      if (old.parent !== now.parent)
        inputs.unshift({ path: "(parent)", before: JSON.stringify(old.parent), after: JSON.stringify(now.parent) });
      return resourceChange("changed", now, inputs);
    }),
  ].sort((a, b) => cmp(a.component, b.component) || cmp(a.name, b.name) || cmp(a.type, b.type));
  return { files, resources };

  function resourceChange(kind: ChangeKind, r: Plan["resources"][number], inputs: InputChange[]): ResourceChange {
    return { kind, type: r.type, name: r.name, component: ownerOf.get(resourceKey(r)) ?? r.name, inputs };
  }
}

const SHORT_VALUE = 60;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The input paths whose values differ; objects are walked, arrays compared whole. */
function inputChanges(before: unknown, after: unknown, at: string): InputChange[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => inputChanges(before[k], after[k], at ? `${at}.${k}` : k));
  }
  const old = JSON.stringify(before);
  const now = JSON.stringify(after);
  if (old === now) return [];
  const short = (v: unknown, json: string | undefined) =>
    (v === undefined || v === null || typeof v !== "object") && (json ?? "").length <= SHORT_VALUE;
  // A scalar that became an object (or a long text such as a script) is named, not shown:
  // the file diff below shows long contents better than a table cell can.
  if (short(before, old) && short(after, now)) return [{ path: at, before: old ?? "(none)", after: now ?? "(none)" }];
  return [{ path: at }];
}

export const isEmptyDiff = (diff: PlanDiff) => diff.files.length === 0 && diff.resources.length === 0;

// ─── Unified diff of two texts ────────────────────────────────────────────────────

/** Lines with their terminators, so a missing final newline is a difference too. */
function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n").map((l) => l + "\n");
  const last = lines.pop()!;
  if (last !== "\n") lines.push(last.slice(0, -1));
  return lines;
}

type Edit = { readonly op: " " | "-" | "+"; readonly line: string };

/**
 * Beyond this many edits the middle of a file is shown as one removal and one addition
 * rather than a minimal script: Myers' trace costs memory quadratic in the edit count.
 */
const MAX_EDITS = 4000;

/** A shortest edit script (Myers 1986) between two line lists. */
function editScript(a: readonly string[], b: readonly string[]): Edit[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tailA = a.length;
  let tailB = b.length;
  while (tailA > head && tailB > head && a[tailA - 1] === b[tailB - 1]) {
    tailA--;
    tailB--;
  }
  const same = (lines: readonly string[]) => lines.map((line): Edit => ({ op: " ", line }));
  return [...same(a.slice(0, head)), ...myers(a.slice(head, tailA), b.slice(head, tailB)), ...same(a.slice(tailA))];
}

function myers(a: readonly string[], b: readonly string[]): Edit[] {
  const removeAll = a.map((line): Edit => ({ op: "-", line }));
  const addAll = b.map((line): Edit => ({ op: "+", line }));
  if (a.length === 0 || b.length === 0) return [...removeAll, ...addAll];
  // Compare integers, not strings, in the inner loop.
  const ids = new Map<string, number>();
  const id = (line: string) => ids.get(line) ?? (ids.set(line, ids.size), ids.size - 1);
  const x0 = a.map(id);
  const y0 = b.map(id);
  const n = a.length;
  const m = b.length;
  const max = Math.min(n + m, MAX_EDITS);
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  // trace[d] holds v for k in [-d-1, d+1] as it was before step d.
  const trace: Int32Array[] = [];
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && x0[x] === y0[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, a, b);
    }
  }
  return [...removeAll, ...addAll];
}

function backtrack(trace: readonly Int32Array[], a: readonly string[], b: readonly string[]): Edit[] {
  const edits: Edit[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d >= 0; d--) {
    const v = trace[d]!;
    const at = (k: number) => v[k + d + 1]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      edits.push({ op: " ", line: a[--x]! });
      y--;
    }
    if (d > 0) {
      if (x === prevX) edits.push({ op: "+", line: b[--y]! });
      else edits.push({ op: "-", line: a[--x]! });
    }
  }
  return edits.reverse();
}

/**
 * The hunks of a unified diff (`diff -u`, three lines of context) from `before` to
 * `after`, in the form `git apply` and `patch` accept, and the line counts.
 */
export function unifiedHunks(before: string, after: string, context = 3): { hunks: string; added: number; removed: number } {
  const edits = editScript(splitLines(before), splitLines(after));
  const changed = edits.flatMap((e, i) => (e.op === " " ? [] : [i]));
  const out: string[] = [];
  // Old and new line numbers (0-based) at each edit.
  const oldAt: number[] = [];
  const newAt: number[] = [];
  let o = 0;
  let n = 0;
  for (const e of edits) {
    oldAt.push(o);
    newAt.push(n);
    if (e.op !== "+") o++;
    if (e.op !== "-") n++;
  }
  let i = 0;
  while (i < changed.length) {
    const start = Math.max(0, changed[i]! - context);
    let last = changed[i]!;
    // Changes with at most twice the context of unchanged lines between them share a hunk (as in git).
    while (i + 1 < changed.length && changed[i + 1]! - last - 1 <= 2 * context) last = changed[++i]!;
    i++;
    const end = Math.min(edits.length, last + context + 1);
    const hunk = edits.slice(start, end);
    const oldCount = hunk.filter((e) => e.op !== "+").length;
    const newCount = hunk.filter((e) => e.op !== "-").length;
    const range = (first: number, count: number) =>
      count === 1 ? `${first + 1}` : `${count === 0 ? first : first + 1},${count}`;
    out.push(`@@ -${range(oldAt[start]!, oldCount)} +${range(newAt[start]!, newCount)} @@\n`);
    for (const e of hunk) {
      out.push(e.line.endsWith("\n") ? `${e.op}${e.line}` : `${e.op}${e.line}\n\\ No newline at end of file\n`);
    }
  }
  return {
    hunks: out.join(""),
    added: edits.filter((e) => e.op === "+").length,
    removed: edits.filter((e) => e.op === "-").length,
  };
}

/** The whole unified diff of one file, with git-style `a/`/`b/` headers. */
export function filePatch(f: FileChange): string {
  const name = `${f.host}${f.path}`;
  const header = `--- ${f.kind === "added" ? "/dev/null" : `a/${name}`}\n+++ ${f.kind === "removed" ? "/dev/null" : `b/${name}`}\n`;
  return f.hunks ? header + f.hunks : "";
}

// ─── Rendering ────────────────────────────────────────────────────────────────────

/** What the diff is between, for the reader. */
export interface DiffHeading {
  readonly stack: string;
  /** The side compared against, e.g. "origin/main (1a2b3c4d5e6f)". */
  readonly base: string;
  /** The side being proposed, e.g. "working tree". */
  readonly head: string;
  /** Why the stack has no plan at the base, when it has none. */
  readonly baseMissing?: string;
  /** Why the stack has no plan at the head, when it has none. */
  readonly headMissing?: string;
  /** The command that reproduces this report locally. */
  readonly command?: string;
}

/** The diff as one JSON document (`--diff-format json`), for scripts and tests. */
export function renderDiffJson(diff: PlanDiff, heading: DiffHeading): string {
  return JSON.stringify({ ...heading, ...diff }, null, 2) + "\n";
}

const SYMBOL: Record<ChangeKind, string> = { added: "+", removed: "-", changed: "~" };

/** "3 changed, 1 added" or "none". */
function counts(items: readonly { kind: ChangeKind }[]): string {
  const by = (kind: ChangeKind) => items.filter((i) => i.kind === kind).length;
  const parts = (["changed", "added", "removed"] as const).filter((k) => by(k) > 0).map((k) => `${by(k)} ${k}`);
  return parts.length ? parts.join(", ") : "none";
}

/** The opening sentences; `name` formats the two sides' labels (plain, or as inline code). */
function summaryLines(diff: PlanDiff, heading: DiffHeading, name: (label: string) => string): string[] {
  const lines: string[] = [];
  if (heading.baseMissing)
    lines.push(`The stack has no plan at ${name(heading.base)} (${heading.baseMissing}): everything is added.`);
  if (heading.headMissing)
    lines.push(`The stack has no plan in the ${heading.head} (${heading.headMissing}): everything is removed.`);
  if (isEmptyDiff(diff)) lines.push(`No difference: the ${heading.head} plans exactly what ${name(heading.base)} plans.`);
  else lines.push(`Resources: ${counts(diff.resources)}. Files: ${counts(diff.files)}.`);
  return lines;
}

function inputSummary(inputs: readonly InputChange[]): string[] {
  return inputs.map((i) => (i.before !== undefined ? `${i.path}: ${i.before} → ${i.after}` : i.path));
}

/** The plain terminal form (`--diff-format text`). */
export function renderDiffText(diff: PlanDiff, heading: DiffHeading): string {
  const out: string[] = [
    `Offline plan diff for stack ${heading.stack}: ${heading.base} → ${heading.head}`,
    ...summaryLines(diff, heading, (label) => label),
  ];
  if (diff.resources.length > 0) {
    out.push("", "Resources (component, name, type, changed inputs):");
    for (const r of diff.resources) {
      const inputs = inputSummary(r.inputs);
      out.push(`  ${SYMBOL[r.kind]} ${r.component}  ${r.name}  ${r.type}${inputs.length ? `  [${inputs.join("; ")}]` : ""}`);
    }
  }
  if (diff.files.length > 0) {
    out.push("", "Files:");
    for (const f of diff.files) out.push(`  ${SYMBOL[f.kind]} ${f.host}:${f.path}  (${fileNote(f)})`);
    for (const f of diff.files) {
      const patch = filePatch(f);
      if (patch) out.push("", patch.replace(/\n$/, ""));
    }
  }
  if (heading.command && !isEmptyDiff(diff)) out.push("", `Reproduce: ${heading.command}`);
  return out.join("\n") + "\n";
}

function fileNote(f: FileChange): string {
  const parts = [f.service ?? "host-wide", `+${f.linesAdded} -${f.linesRemoved}`];
  for (const m of f.metadata) parts.push(`${m.field} ${m.before ?? "(none)"} → ${m.after ?? "(none)"}`);
  return parts.join(", ");
}

/** Inline code that survives backticks in the text, safe inside a table cell. */
function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longest + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** A fenced block whose fence is longer than any backtick run in its content. */
function fenced(lang: string, text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longest + 1);
  return `${fence}${lang}\n${text.replace(/\n?$/, "\n")}${fence}`;
}

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export interface MarkdownOptions {
  /**
   * Upper bound on the report's length. A GitHub comment holds 65,536 characters; the
   * default leaves room for the workflow's marker. Tables are kept whole where they fit,
   * then file diffs are added in order until the budget runs out; what is left out is
   * named, with the command that shows it all.
   */
  readonly maxChars?: number;
}

/** The pull-request comment form (`--diff-format markdown`, the default). */
export function renderDiffMarkdown(diff: PlanDiff, heading: DiffHeading, options: MarkdownOptions = {}): string {
  const maxChars = options.maxChars ?? 60_000;
  const head: string[] = [
    `### Offline plan: stack ${code(heading.stack)}`,
    "",
    `${code(heading.base)} → ${heading.head}`,
    "",
    ...summaryLines(diff, heading, code),
  ];
  const footer = heading.command ? [`Run ${code(heading.command)} to see this locally.`] : [];
  if (isEmptyDiff(diff)) return [...head, ...(footer.length ? ["", ...footer] : [])].join("\n") + "\n";

  const resourceRows = diff.resources.map(
    (r) =>
      `| ${r.kind} | ${escapeHtml(r.component)} | ${code(r.name)} | ${code(r.type)} | ${inputSummary(r.inputs).map(code).join(", ")} |`,
  );
  const fileRows = diff.files.map(
    (f) =>
      `| ${f.kind} | ${escapeHtml(f.host)} | ${code(f.path)} | ${escapeHtml(f.service ?? "host-wide")} | +${f.linesAdded} −${f.linesRemoved}${f.metadata
        .map((m) => `, ${m.field} ${code(m.before ?? "(none)")} → ${code(m.after ?? "(none)")}`)
        .join("")} |`,
  );
  const budget = { left: maxChars - [...head, ...footer].join("\n").length - 400 };
  const table = (title: string, columns: string, rows: string[], noun: string) => {
    const header = [`#### ${title}`, "", columns, columns.replace(/[^|]+/g, " --- ")];
    // A table may take at most half of what is left, so some file diffs still fit.
    const share = budget.left / 2;
    const kept: string[] = [];
    let used = header.join("\n").length;
    for (const row of rows) {
      if (used + row.length + 1 > share) break;
      kept.push(row);
      used += row.length + 1;
    }
    const omitted = rows.length - kept.length;
    const lines = [...header, ...kept, ...(omitted ? ["", `… and ${omitted} more ${noun} (left out to fit a comment).`] : [])];
    budget.left -= lines.join("\n").length + 2;
    return lines;
  };
  const body = [
    ...(diff.resources.length
      ? ["", ...table("Resources", "| change | component | resource | type | changed inputs |", resourceRows, "resources")]
      : []),
    ...(diff.files.length ? ["", ...table("Files", "| change | host | path | service | lines |", fileRows, "files")] : []),
  ];
  const omittedPatches: string[] = [];
  for (const f of diff.files) {
    const patch = filePatch(f);
    if (!patch) continue;
    const section = [
      "",
      `<details${f.kind === "changed" ? " open" : ""}><summary><code>${escapeHtml(`${f.host}:${f.path}`)}</code> (${f.kind}, +${f.linesAdded} −${f.linesRemoved})</summary>`,
      "",
      fenced("diff", patch),
      "",
      "</details>",
    ];
    const length = section.join("\n").length + 1;
    if (length > budget.left) {
      omittedPatches.push(`${f.host}:${f.path}`);
      continue;
    }
    budget.left -= length;
    body.push(...section);
  }
  if (omittedPatches.length > 0) {
    body.push("", `The diff of ${omittedPatches.length} file(s) is left out to fit a comment.`);
  }
  return [...head, ...body, ...(footer.length ? ["", ...footer] : [])].join("\n") + "\n";
}

/** What `--diff-out` holds when no diff could be made: the error, in the format asked for. */
export function renderDiffFailure(format: "markdown" | "text" | "json", heading: DiffHeading, message: string): string {
  switch (format) {
    case "json":
      return JSON.stringify({ ...heading, error: message }, null, 2) + "\n";
    case "text":
      return `Offline plan diff for stack ${heading.stack} against ${heading.base} failed:\n${message.replace(/\n?$/, "\n")}`;
    case "markdown":
      return [
        `### Offline plan: stack ${code(heading.stack)}`,
        "",
        `The comparison with ${code(heading.base)} failed:`,
        "",
        fenced("text", message),
        "",
      ].join("\n");
    default: {
      const _exhaustive: never = format;
      return _exhaustive;
    }
  }
}

// ─── Planning a stack at a git ref ────────────────────────────────────────────────

function git(root: string, args: string[], input?: Buffer): { ok: boolean; stdout: Buffer; stderr: string } {
  const r = spawnSync("git", ["-C", root, ...args], { input, maxBuffer: 1 << 30 });
  if (r.error) throw new PlanInputError(`--diff needs git: ${r.error.message}`);
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr.toString() };
}

export interface ResolvedRef {
  readonly ref: string;
  readonly commit: string;
  /** The project's folder inside the repository ("" at its top, else ending in "/"). */
  readonly prefix: string;
}

/** The commit `ref` names in the repository holding `root`, or a PlanInputError that says why not. */
export function resolveRef(root: string, ref: string): ResolvedRef {
  const top = git(root, ["rev-parse", "--show-prefix"]);
  if (!top.ok) throw new PlanInputError(`--diff ${ref}: ${root} is not inside a git repository`);
  // A ref that starts with "-" would be read as an option by git.
  const found = ref.startsWith("-") ? undefined : git(root, ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]);
  if (!found?.ok)
    throw new PlanInputError(
      `--diff ${ref}: unknown git ref (no commit by that name in ${root}; a shallow clone may lack it: fetch with full history)`,
    );
  return { ref, commit: found.stdout.toString().trim(), prefix: top.stdout.toString().trim() };
}

/** How a reader names the base: the ref as given, with the commit when the ref is not already it. */
export function refLabel(r: ResolvedRef): string {
  const short = r.commit.slice(0, 12);
  return r.commit.startsWith(r.ref) ? short : `${r.ref} (${short})`;
}

export type RefPlan = { readonly dir: string } | { readonly missing: string };

/**
 * Runs the plan script of the tree at `tree` (node with tsx's loader, resolved through
 * that tree's node_modules: one process, which the abort signal stops at once) and
 * returns the plan folder it wrote; a failure is an error quoting the plan's own message.
 */
async function runPlanScript(tree: string, stack: string, outDir: string, side: string, signal?: AbortSignal): Promise<string> {
  const args = ["--import", "tsx", path.join(tree, "scripts", "plan.ts"), "--stack", stack, "--out", outDir];
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: tree, stdio: ["ignore", "ignore", "pipe"], signal });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
  if (result.code !== 0) throw new PlanInputError(`the plan of stack ${stack} ${side} failed:\n${result.stderr.trimEnd()}`);
  return path.join(outDir, stack);
}

/**
 * Plans `stack` as the working tree at `root` has it, into `<workDir>/out`, in a child
 * process like the ref's plan: this process stays free to answer Ctrl-C (the tsx
 * command kills a child that does not acknowledge a signal within milliseconds, which
 * would leave the scratch folder behind).
 */
export async function planWorkingTree(options: {
  readonly root: string;
  readonly stack: string;
  readonly workDir: string;
  readonly signal?: AbortSignal;
}): Promise<RefPlan> {
  const { root, stack, workDir } = options;
  if (!fs.existsSync(path.join(root, `Pulumi.${stack}.yaml`))) return { missing: `no Pulumi.${stack}.yaml` };
  return { dir: await runPlanScript(root, stack, path.join(workDir, "out"), "in the working tree", options.signal) };
}

/**
 * Plans `stack` as it is at `at.commit`: that commit's code and its own
 * `Pulumi.<stack>.yaml`, run by that commit's own plan script, into `<workDir>/out`.
 * The tree is exported with `git archive` into `<workDir>/tree` (rather than a `git
 * worktree`, which would register itself in the shared repository and outlive a killed
 * process), with this tree's node_modules linked in, and removed afterwards; the caller
 * removes `workDir`. A commit without the stack file or without the plan script has no
 * plan: `missing` says which.
 */
export async function planAtRef(options: {
  readonly root: string;
  readonly at: ResolvedRef;
  readonly stack: string;
  readonly workDir: string;
  readonly signal?: AbortSignal;
}): Promise<RefPlan> {
  const { root, at, stack, workDir } = options;
  const has = (file: string) => git(root, ["cat-file", "-e", `${at.commit}:${at.prefix}${file}`]).ok;
  if (!has(`Pulumi.${stack}.yaml`)) return { missing: `no Pulumi.${stack}.yaml there` };
  if (!has("scripts/plan.ts")) return { missing: "no offline plan script there" };

  const tree = path.join(workDir, "tree");
  fs.mkdirSync(tree, { recursive: true });
  try {
    const treeish = at.prefix ? `${at.commit}:${at.prefix.replace(/\/$/, "")}` : at.commit;
    const archive = git(root, ["archive", "--format=tar", treeish]);
    if (!archive.ok) throw new Error(`git archive ${at.commit} failed: ${archive.stderr}`);
    const untar = spawnSync("tar", ["-x", "-C", tree], { input: archive.stdout, maxBuffer: 1 << 30 });
    if (untar.status !== 0) throw new Error(`tar could not unpack ${at.commit}: ${untar.stderr}`);
    fs.symlinkSync(path.join(root, "node_modules"), path.join(tree, "node_modules"), "dir");
    return { dir: await runPlanScript(tree, stack, path.join(workDir, "out"), `at ${refLabel(at)}`, options.signal) };
  } finally {
    fs.rmSync(tree, { recursive: true, force: true });
  }
}
