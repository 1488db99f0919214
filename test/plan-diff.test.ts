/**
 * Pull-request previews: `npm run plan -- --stack <name> --diff <git-ref>`.
 *
 * The command runs on a throwaway git repository made from this tree's files, with one
 * commit per situation a reviewer meets (a stack that does not exist yet, one image
 * changed, one service added, a code change, a broken config at the base), and once on
 * this repository's own history. The unified diff is checked against the real tools:
 * GNU `diff -u` for the exact hunks, `git apply` for any edit.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import YAML from "yaml";
import {
  diffPlans,
  renderDiffMarkdown,
  renderDiffText,
  unifiedHunks,
  type DiffHeading,
  type FileChange,
  type PlanDiff,
  type PlanSnapshot,
} from "../plan/diff";
import type { Plan } from "../plan/manifest";

const root = path.join(__dirname, "..");
const tsx = path.join(root, "node_modules", ".bin", "tsx");

const made: string[] = [];
function tmp(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `edgeplane-test-${prefix}-`));
  made.push(dir);
  return dir;
}
after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

// ─── The unified diff, against the real tools ─────────────────────────────────────

const numbered = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `line ${from + i}\n`).join("");

describe("unifiedHunks", () => {
  /** GNU diff's hunks for the same two texts (its two header lines dropped). */
  function gnuHunks(before: string, after: string): string {
    const dir = tmp("gnu");
    fs.writeFileSync(path.join(dir, "a"), before);
    fs.writeFileSync(path.join(dir, "b"), after);
    const r = spawnSync("diff", ["-u", "a", "b"], { cwd: dir, encoding: "utf8" });
    assert.ok(r.status === 0 || r.status === 1, r.stderr);
    return r.stdout.split("\n").slice(2).join("\n");
  }

  const lines = numbered(20);
  const cases: Record<string, [string, string]> = {
    "one line changed": [lines, lines.replace("line 10\n", "line ten\n")],
    "changes 6 lines apart share a hunk": [lines, lines.replace("line 5\n", "five\n").replace("line 12\n", "twelve\n")],
    "changes 7 lines apart get two hunks": [lines, lines.replace("line 5\n", "five\n").replace("line 13\n", "thirteen\n")],
    "lines added at the start": [lines, "new 1\nnew 2\n" + lines],
    "lines removed at the end": [lines, numbered(17)],
    "a file created": ["", numbered(3)],
    "a file emptied": [numbered(3), ""],
    "a missing final newline": [lines, lines.slice(0, -1)],
    "a final newline added": [numbered(2).slice(0, -1), numbered(2)],
  };
  for (const [name, [before, after]] of Object.entries(cases)) {
    it(`matches diff -u: ${name}`, () => {
      assert.equal(unifiedHunks(before, after).hunks, gnuHunks(before, after));
    });
  }

  it("counts added and removed lines", () => {
    assert.deepEqual(unifiedHunks(numbered(5), numbered(5).replace("line 3\n", "three\nthree and a half\n")), {
      hunks: "@@ -1,5 +1,6 @@\n line 1\n line 2\n-line 3\n+three\n+three and a half\n line 4\n line 5\n",
      added: 2,
      removed: 1,
    });
  });

  it("gives patches that git apply turns the old text into the new one, for random edits", () => {
    // A fixed-seed generator (xorshift32): the same edits on every run.
    let state = 0x9e3779b9;
    const random = (n: number) => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % n;
    };
    const dir = tmp("apply");
    let applied = 0;
    for (let round = 0; round < 40; round++) {
      const before = Array.from({ length: random(60) }, () => `v${random(8)}\n`);
      const after = [...before];
      for (let edits = random(8); edits > 0; edits--) {
        const at = random(after.length + 1);
        if (random(2) === 0 && after.length > 0) after.splice(at, 1 + random(3));
        else after.splice(at, 0, ...Array.from({ length: 1 + random(3) }, () => `n${random(8)}\n`));
      }
      const { hunks } = unifiedHunks(before.join(""), after.join(""));
      fs.writeFileSync(path.join(dir, "f"), before.join(""));
      fs.writeFileSync(path.join(dir, "f.patch"), hunks ? `--- a/f\n+++ b/f\n${hunks}` : "");
      if (hunks) {
        run("git", ["apply", "f.patch"], dir);
        applied++;
      }
      assert.equal(fs.readFileSync(path.join(dir, "f"), "utf8"), after.join(""), `round ${round}`);
    }
    assert.ok(applied >= 30, `only ${applied} of 40 rounds changed anything`);
  });
});

// ─── Rendering ────────────────────────────────────────────────────────────────────

function snapshot(files: Record<string, string>, resources: Plan["resources"] = []): PlanSnapshot {
  return {
    resources,
    files: new Map(
      Object.entries(files).map(([p, content]) => [`edge\0${p}`, { owner: "root", mode: "0644", service: null, content }]),
    ),
  };
}

const heading: DiffHeading = {
  stack: "prod",
  base: "origin/main (0123456789ab)",
  head: "working tree",
  command: "npm run plan -- --stack prod --diff origin/main",
};

/** Markdown a renderer may not break: fences and <details> balanced. */
function assertWellFormed(markdown: string): void {
  const fences = markdown.split("\n").filter((l) => /^```+/.test(l));
  assert.equal(fences.length % 2, 0, "unbalanced code fences");
  assert.equal((markdown.match(/<details/g) ?? []).length, (markdown.match(/<\/details>/g) ?? []).length);
}

describe("the report", () => {
  it("fences file contents that themselves hold a code fence", () => {
    const diff = diffPlans(snapshot({ "/README.md": "```sh\nold\n```\n" }), snapshot({ "/README.md": "```sh\nnew\n```\n" }));
    const md = renderDiffMarkdown(diff, heading);
    assert.match(md, /^````diff$/m);
    assertWellFormed(md.replace(/^```(sh)?$/gm, ""));
  });

  it("stays under the size limit, keeps the summary, and says what it left out", () => {
    const big = (tag: string) => Array.from({ length: 400 }, (_, i) => `${tag} ${i}\n`).join("");
    const files = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`/etc/file-${String(i).padStart(2, "0")}`, big("a")]));
    const after = Object.fromEntries(Object.keys(files).map((p) => [p, big("b")]));
    const md = renderDiffMarkdown(diffPlans(snapshot(files), snapshot(after)), heading, { maxChars: 20_000 });
    assert.ok(md.length <= 20_000, `${md.length} characters`);
    assert.match(md, /Files: 30 changed\./);
    assert.match(md, /The diff of \d+ file\(s\) is left out to fit a comment\./);
    assert.match(md, /Run `npm run plan -- --stack prod --diff origin\/main` to see this locally\./);
    assertWellFormed(md);
  });

  it("does not depend on the order either plan lists things in", () => {
    const resource = (name: string, image: string): Plan["resources"][number] => ({
      type: "command:remote:Command",
      name,
      parent: name.split("-")[0]!,
      inputs: { image },
    });
    const files = { "/etc/a": "1\n", "/etc/b": "2\n", "/etc/c": "3\n" };
    const before = snapshot(files, [resource("a-pull", "x:1"), resource("b-pull", "y:1"), resource("c-pull", "z:1")]);
    const after = snapshot({ "/etc/a": "one\n", "/etc/b": "2\n", "/etc/c": "three\n" }, [
      resource("c-pull", "z:2"),
      resource("b-pull", "y:2"),
      resource("a-pull", "x:2"),
    ]);
    const reversed = (s: PlanSnapshot): PlanSnapshot => ({
      resources: [...s.resources].reverse(),
      files: new Map([...s.files].reverse()),
    });
    const md = renderDiffMarkdown(diffPlans(before, after), heading);
    assert.equal(renderDiffMarkdown(diffPlans(reversed(before), reversed(after)), heading), md);
    assert.deepEqual(
      md.split("\n").filter((l) => l.startsWith("| changed")),
      [
        '| changed | a | `a-pull` | `command:remote:Command` | `image: "x:1" → "x:2"` |',
        '| changed | b | `b-pull` | `command:remote:Command` | `image: "y:1" → "y:2"` |',
        '| changed | c | `c-pull` | `command:remote:Command` | `image: "z:1" → "z:2"` |',
        "| changed | edge | `/etc/a` | host-wide | +1 −1 |",
        "| changed | edge | `/etc/c` | host-wide | +1 −1 |",
      ],
    );
  });

  it("shows short input values, names long ones, and marks a moved resource", () => {
    const dns = (content: string, parent: string): Plan["resources"][number] => ({
      type: "cloudflare:index/dnsRecord:DnsRecord",
      name: "www-dns",
      parent,
      inputs: { content, ttl: 1, comment: "x".repeat(100) + content },
    });
    const diff = diffPlans(snapshot({}, [dns("203.0.113.10", "www")]), snapshot({}, [dns("203.0.113.11", "web")]));
    assert.deepEqual(diff.resources[0]!.inputs, [
      { path: "(parent)", before: '"www"', after: '"web"' },
      { path: "comment" },
      { path: "content", before: '"203.0.113.10"', after: '"203.0.113.11"' },
    ]);
    assert.match(renderDiffText(diff, heading), /~ web {2}www-dns {2}cloudflare:index\/dnsRecord:DnsRecord {2}\[\(parent\)/);
  });
});

// ─── The command, on a repository with a history ──────────────────────────────────

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The temporary folder of every command run here, so that what they leave behind shows. */
const commandTmp = tmp("tmpdir");
/** What the commands left there: tsx keeps its compile cache there (tsx-<uid>), anything else is a leak. */
const leftovers = () => fs.readdirSync(commandTmp).filter((f) => !f.startsWith("tsx-"));

/** `scripts/plan.ts <args>` of the tree at `cwd`. */
function plan(cwd: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, [path.join(cwd, "scripts", "plan.ts"), ...args], {
      cwd,
      env: { ...process.env, TMPDIR: commandTmp },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A repository holding this tree's files (committed or not: the code under test) and a
 * history for the "contract" stack:
 *   c1 code only → c2 + Pulumi.contract.yaml → c3 grafana's image → c4 + service whoami;
 *   branches from c2: "marker" (index.ts registers one more resource), "bad" (an invalid config).
 * Each state to plan from is a worktree of its own, with this tree's node_modules.
 */
function makeRepository() {
  const repo = tmp("repo");
  const git = (...args: string[]) => run("git", args, repo).trim();
  const listed = run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], root).split("\0");
  for (const file of listed.filter(Boolean)) {
    const from = path.join(root, file);
    // Deleted but not yet staged; stacks other than the one under test stay out.
    if (!fs.existsSync(from) || (/^Pulumi\.[^/]+\.yaml$/.test(file) && file !== "Pulumi.yaml")) continue;
    fs.mkdirSync(path.dirname(path.join(repo, file)), { recursive: true });
    fs.copyFileSync(from, path.join(repo, file));
  }
  git("init", "-q", "-b", "main");
  // The node_modules link is a file to git, which the tree's "node_modules/" pattern does not ignore.
  fs.appendFileSync(path.join(repo, ".git", "info", "exclude"), "node_modules\n");
  git("config", "user.email", "test@example.org");
  git("config", "user.name", "test");
  git("config", "commit.gpgsign", "false");
  const commit = (message: string) => {
    git("add", "-A");
    git("commit", "-q", "--allow-empty", "-m", message);
    return git("rev-parse", "HEAD");
  };
  const stackFile = path.join(repo, "Pulumi.contract.yaml");
  const editStack = (edit: (config: Record<string, any>) => void) => {
    const doc = YAML.parse(fs.readFileSync(stackFile, "utf8"));
    edit(doc.config);
    fs.writeFileSync(stackFile, YAML.stringify(doc));
  };

  const c1 = commit("code only");
  fs.copyFileSync(path.join(root, "test", "stacks", "contract.yaml"), stackFile);
  const c2 = commit("add the contract stack");
  editStack((c) => (c["edgeplane:services"].grafana.image = "docker.io/grafana/grafana:11.3.0"));
  const c3 = commit("grafana 11.3.0");
  editStack(
    (c) =>
      (c["edgeplane:services"].whoami = { host: "edge", image: "docker.io/traefik/whoami:v1.10.3", port: 80, caddyPort: 10447 }),
  );
  const c4 = commit("add whoami");

  git("checkout", "-q", "-b", "marker", c2);
  fs.appendFileSync(path.join(repo, "index.ts"), '\nnew pulumi.ComponentResource("edgeplane:test:Marker", "code-marker");\n');
  commit("the program registers one more resource");
  git("checkout", "-q", "-b", "bad", c2);
  editStack((c) => (c["edgeplane:services"].grafana.host = "edg"));
  commit("a typo in the config");
  git("checkout", "-q", "main");

  const worktree = (name: string, at: string) => {
    const dir = path.join(repo, "..", `${path.basename(repo)}-${name}`);
    made.push(dir);
    git("worktree", "add", "-q", "--detach", dir, at);
    fs.symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir");
    return dir;
  };
  return { c1, c2, c3, c4, at2: worktree("c2", c2), at3: worktree("c3", c3), at4: worktree("c4", c4) };
}

interface JsonReport extends PlanDiff, DiffHeading {}
const json = (r: Run): JsonReport => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as JsonReport;
};
const byKind = (files: readonly FileChange[]) => [...new Set(files.map((f) => f.kind))].sort();
const STACK = ["--stack", "contract"];

describe("npm run plan -- --stack <s> --diff <ref>", () => {
  const repo = makeRepository();
  const runs = new Map<string, Run>();
  let plainPlan: Plan;
  let badReport: string;
  before(async () => {
    const out = tmp("plain");
    badReport = path.join(out, "bad.md");
    const started: [string, Promise<Run>][] = [
      ["image", plan(repo.at3, [...STACK, "--diff", repo.c2, "--diff-format", "json"])],
      ["add", plan(repo.at4, [...STACK, "--diff", repo.c3, "--diff-format", "json"])],
      ["same", plan(repo.at2, [...STACK, "--diff", "HEAD"])],
      ["new-stack", plan(repo.at2, [...STACK, "--diff", repo.c1, "--diff-format", "json"])],
      ["marker", plan(repo.at2, [...STACK, "--diff", "marker", "--diff-format", "json"])],
      ["bad", plan(repo.at2, [...STACK, "--diff", "bad", "--diff-out", badReport])],
      ["unknown", plan(repo.at2, [...STACK, "--diff", "no-such-ref"])],
      ["plain", plan(repo.at2, [...STACK, "--out", out])],
    ];
    for (const [name, promise] of started) runs.set(name, await promise);
    assert.equal(runs.get("plain")!.code, 0, runs.get("plain")!.stderr);
    plainPlan = JSON.parse(fs.readFileSync(path.join(out, "contract", "plan.json"), "utf8"));
  });

  it("a changed image shows exactly that service's unit file and the pod's command that deploys it", () => {
    const report = json(runs.get("image")!);
    assert.deepEqual(
      report.files.map((f) => [f.kind, f.host, f.path, f.service]),
      [["changed", "edge", "/var/lib/edgeplane/grafana/.config/containers/systemd/grafana-app.container", "grafana"]],
    );
    assert.match(
      report.files[0]!.hunks,
      /^-Image=docker\.io\/grafana\/grafana:11\.2\.0\n\+Image=docker\.io\/grafana\/grafana:11\.3\.0$/m,
    );
    assert.deepEqual([...new Set(report.resources.map((r) => `${r.kind} ${r.component}`))], ["changed grafana"]);
    // The pod's one deploy command re-runs: its text names the file's new hash.
    assert.ok(report.resources.some((r) => r.name === "grafana-deploy" && r.inputs.some((i) => i.path === "create")));
    assert.equal(report.base, repo.c2.slice(0, 12));
    assert.equal(report.baseMissing, undefined);
  });

  it("a service added to the stack config shows its files as added, and Envoy's routing as changed", () => {
    const report = json(runs.get("add")!);
    const added = report.files.filter((f) => f.kind === "added");
    assert.deepEqual(
      added.map((f) => f.path),
      [
        "/var/lib/edgeplane/whoami/.config/containers/systemd/whoami-app.container",
        "/var/lib/edgeplane/whoami/.config/containers/systemd/whoami-caddy-data.volume",
        "/var/lib/edgeplane/whoami/.config/containers/systemd/whoami-caddy.container",
        "/var/lib/edgeplane/whoami/.config/containers/systemd/whoami.pod",
        "/var/lib/edgeplane/whoami/caddy/Caddyfile",
      ],
    );
    assert.ok(added.every((f) => f.service === "whoami" && f.host === "edge" && f.linesRemoved === 0 && f.linesAdded > 0));
    const changed = report.files.filter((f) => f.kind === "changed");
    assert.ok(changed.length > 0 && changed.every((f) => f.service === null && f.host === "edge"), JSON.stringify(changed));
    assert.ok(report.files.every((f) => f.kind !== "removed"));
    assert.ok(report.resources.some((r) => r.kind === "added" && r.type === "edgeplane:index:SidecarPod" && r.name === "whoami"));
  });

  it("no change says there is no difference, and exits 0", () => {
    const r = runs.get("same")!;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      "### Offline plan: stack `contract`\n\n" +
        `\`HEAD (${repo.c2.slice(0, 12)})\` → working tree\n\n` +
        `No difference: the working tree plans exactly what \`HEAD (${repo.c2.slice(0, 12)})\` plans.\n\n` +
        "Run `npm run plan -- --stack contract --diff HEAD` to see this locally.\n",
    );
  });

  it("a ref where the stack does not exist yet shows every file and resource as added", () => {
    const report = json(runs.get("new-stack")!);
    assert.equal(report.baseMissing, "no Pulumi.contract.yaml there");
    assert.deepEqual(byKind(report.files), ["added"]);
    assert.deepEqual(
      report.files.map((f) => `${f.host}:${f.path}`),
      plainPlan.files.map((f) => `${f.host}:${f.path}`),
    );
    assert.deepEqual([...new Set(report.resources.map((r) => r.kind))], ["added"]);
    assert.deepEqual(
      report.resources.map((r) => `${r.type}::${r.name}`).sort(),
      plainPlan.resources.map((r) => `${r.type}::${r.name}`).sort(),
    );
  });

  it("plans the ref with the ref's own code, not only its stack file", () => {
    const report = json(runs.get("marker")!);
    assert.deepEqual(report.files, []);
    assert.deepEqual(report.resources, [
      { kind: "removed", type: "edgeplane:test:Marker", name: "code-marker", component: "code-marker", inputs: [] },
    ]);
  });

  it("a ref whose plan fails is an error naming the ref and the problem, in the report file too", () => {
    const r = runs.get("bad")!;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^the plan of stack contract at bad \([0-9a-f]{12}\) failed:$/m);
    assert.match(r.stderr, /edgeplane:services\.grafana\.host: unknown host "edg"/);
    assert.equal(r.stdout, "");
    const report = fs.readFileSync(badReport, "utf8");
    assert.match(
      report,
      /^### Offline plan: stack `contract`\n\nThe comparison with `bad` failed:\n\n```text\nthe plan of stack contract/,
    );
    assert.match(report, /unknown host "edg"/);
    assertWellFormed(report);
  });

  it("an unknown ref is a one-line error", () => {
    const r = runs.get("unknown")!;
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^--diff no-such-ref: unknown git ref \(no commit by that name in .*\)\n$/);
  });

  it("removes the trees and plans it made, on success and on failure", () => {
    assert.deepEqual(leftovers(), []);
  });
});

describe("npm run plan -- --stack prod --diff HEAD~1, on this repository", () => {
  it("runs and writes a well-formed report", async () => {
    const dir = tmp("report");
    const out = path.join(dir, "prod.md");
    const r = await plan(root, ["--stack", "prod", "--diff", "HEAD~1", "--diff-out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^plan diff for stack prod against HEAD~1 \([0-9a-f]{12}\): \d+ resource\(s\), \d+ file\(s\) differ → /,
    );
    const md = fs.readFileSync(out, "utf8");
    assert.match(md, /^### Offline plan: stack `prod`\n\n`HEAD~1 \([0-9a-f]{12}\)` → working tree\n\n/);
    assert.match(md, /^(No difference: .*|Resources: .*\. Files: .*\.)$/m);
    assert.ok(md.length <= 60_000, `${md.length} characters`);
    assertWellFormed(md);
    assert.deepEqual(leftovers(), []);
  });
});
