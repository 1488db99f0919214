/**
 * The GitHub workflows in .github/workflows, checked by actionlint (built by
 * scripts/build-tools.sh from tools/actionlint): expression syntax and types, which
 * contexts each key may use, the inputs of the actions they call, repository variables
 * (.github/actionlint.yaml). Then broken copies, one per kind of mistake, to show each
 * check can fail; and what actionlint cannot know: the permissions, the pins, and that
 * the preview comment is edited rather than posted again.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { haveTool, toolPath } from "../support/tools";

const root = path.join(__dirname, "..", "..");
const workflowsDir = path.join(root, ".github", "workflows");
const configFile = path.join(root, ".github", "actionlint.yaml");
const workflows = fs
  .readdirSync(workflowsDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const previewFile = path.join(workflowsDir, "preview.yml");
const enabled = haveTool("actionlint");

/**
 * actionlint's findings for one file ("" when none). Its shellcheck and pyflakes passes
 * are off: they run only when those programs happen to be installed, and a check must
 * not pass on one machine and fail on another.
 */
function actionlint(file: string): { code: number | null; output: string } {
  const r = spawnSync(toolPath("actionlint")!, ["-no-color", "-shellcheck=", "-pyflakes=", "-config-file", configFile, file], {
    encoding: "utf8",
  });
  return { code: r.status, output: r.stdout + r.stderr };
}

/** actionlint's findings for preview.yml with `from` replaced by `to` (which must occur). */
function lintBroken(from: string, to: string): { code: number | null; output: string } {
  const text = fs.readFileSync(previewFile, "utf8");
  assert.ok(text.includes(from), `preview.yml no longer contains ${JSON.stringify(from)}`);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-workflow-")), "preview.yml");
  fs.writeFileSync(file, text.replace(from, to));
  return actionlint(file);
}

describe("actionlint", { skip: !enabled && "actionlint is not built (bash scripts/build-tools.sh)" }, () => {
  it("finds the workflows", () => {
    assert.ok(workflows.includes("preview.yml"), workflows.join(", "));
  });

  for (const name of workflows) {
    it(`passes ${name}`, () => {
      const r = actionlint(path.join(workflowsDir, name));
      assert.equal(r.output, "");
      assert.equal(r.code, 0);
    });
  }

  it("rejects `secrets` in an `if:`", () => {
    const r = lintBroken("if: steps.credentials.outputs.enabled == 'true'", "if: secrets.PULUMI_ACCESS_TOKEN != ''");
    assert.equal(r.code, 1);
    assert.match(r.output, /:\d+:\d+: context "secrets" is not allowed here\. available contexts are .* \[expression\]/);
  });

  it("rejects a property the matrix does not have", () => {
    const r = lintBroken("name: plan diff (${{ matrix.stack }})", "name: plan diff (${{ matrix.stak }})");
    assert.equal(r.code, 1);
    assert.match(r.output, /:\d+:\d+: property "stak" is not defined in object type \{stack: any\} \[expression\]/);
  });

  it("rejects an unclosed expression", () => {
    const r = lintBroken("${{ github.event.pull_request.number }}", "${{ github.event.pull_request.number }");
    assert.equal(r.code, 1);
    assert.match(r.output, /got unexpected EOF while lexing end marker \}\}/);
  });

  it("rejects an input pulumi/actions does not have", () => {
    const r = lintBroken("edit-pr-comment: true", "edit-comment: true");
    assert.equal(r.code, 1);
    assert.match(r.output, /input "edit-comment" is not defined in action "pulumi\/actions@v6"/);
  });

  it("rejects a repository variable not declared in .github/actionlint.yaml", () => {
    const r = lintBroken("vars.PULUMI_ORG", "vars.PULUMI_ORGANIZATION");
    assert.equal(r.code, 1);
    assert.match(r.output, /undefined configuration variable "pulumi_organization"/);
  });
});

type Step = { name?: string; id?: string; uses?: string; run?: string; if?: string; with?: Record<string, unknown> };
type Job = { if?: string; env?: Record<string, string>; permissions?: unknown; steps: Step[] };
const preview = YAML.parse(fs.readFileSync(previewFile, "utf8")) as {
  on: Record<string, unknown>;
  permissions: Record<string, string>;
  concurrency: { group: string; "cancel-in-progress": boolean };
  jobs: Record<string, Job>;
};

describe("the preview workflow", () => {
  it("runs on pull requests with only the permissions it needs, for every job", () => {
    assert.deepEqual(Object.keys(preview.on), ["pull_request"]);
    assert.deepEqual(preview.permissions, { contents: "read", "pull-requests": "write" });
    for (const [name, job] of Object.entries(preview.jobs)) assert.equal(job.permissions, undefined, name);
  });

  it("lets a new push cancel the previews of the one before, per pull request", () => {
    assert.deepEqual(preview.concurrency, {
      group: "preview-${{ github.event.pull_request.number }}",
      "cancel-in-progress": true,
    });
  });

  it("pins every action to a major version or a commit", () => {
    const uses = Object.values(preview.jobs).flatMap((job) => job.steps.flatMap((s) => (s.uses ? [s.uses] : [])));
    assert.ok(uses.length > 0);
    for (const u of uses) assert.match(u, /^[\w.-]+\/[\w.-]+@(v\d+|[0-9a-f]{40})$/, u);
  });

  it("diffs against the base branch with full history", () => {
    const steps = preview.jobs["plan-diff"]!.steps;
    assert.equal(steps.find((s) => s.uses?.startsWith("actions/checkout@"))!.with!["fetch-depth"], 0);
    assert.match(
      steps.map((s) => s.run ?? "").join("\n"),
      /npm run --silent plan -- --stack "\$STACK" --diff "\$BASE" --diff-out plan-diff\.md \|\| status=\$\?/,
    );
  });

  it("runs pulumi preview only with credentials, read from env because `if:` cannot read secrets", () => {
    const job = preview.jobs["pulumi-preview"]!;
    assert.equal(job.env!.PULUMI_ACCESS_TOKEN, "${{ secrets.PULUMI_ACCESS_TOKEN }}");
    const [check, ...rest] = job.steps;
    assert.equal(check!.id, "credentials");
    for (const step of rest) assert.equal(step.if, "steps.credentials.outputs.enabled == 'true'", step.uses ?? step.run);
    const pulumi = rest.find((s) => s.uses?.startsWith("pulumi/actions@"))!;
    assert.deepEqual(pulumi.with, {
      command: "preview",
      "stack-name": "${{ env.PULUMI_ORG }}/edgeplane/${{ matrix.stack }}",
      "comment-on-pr": true,
      "edit-pr-comment": true,
      "github-token": "${{ github.token }}",
    });
  });

  describe("the plan-diff comment", () => {
    const step = preview.jobs["plan-diff"]!.steps.find((s) => s.uses?.startsWith("actions/github-script@"))!;

    it("is posted even when the diff failed, and skipped where the token cannot comment", () => {
      assert.equal(
        step.if,
        "!cancelled() && hashFiles('plan-diff.md') != '' && " +
          "github.event.pull_request.head.repo.full_name == github.repository && github.actor != 'dependabot[bot]'",
      );
    });

    type Comment = { id: number; user: { type: string }; body: string };
    /** Runs the step's script as actions/github-script would, against a fake pull request. */
    function postReport(comments: Comment[], stack: string, report: string) {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-comment-")), "plan-diff.md");
      fs.writeFileSync(file, report);
      const calls: string[] = [];
      const listComments = () => {
        throw new Error("listComments is called through paginate");
      };
      const github = {
        paginate: async (method: unknown, params: Record<string, unknown>) => {
          assert.equal(method, listComments);
          assert.deepEqual(params, { owner: "o", repo: "r", issue_number: 7, per_page: 100 });
          calls.push("list");
          return comments.map((c) => ({ ...c }));
        },
        rest: {
          issues: {
            listComments,
            createComment: async (p: { issue_number: number; body: string }) => {
              calls.push("create");
              comments.push({ id: comments.length + 1, user: { type: "Bot" }, body: p.body });
            },
            updateComment: async (p: { comment_id: number; body: string }) => {
              calls.push(`update ${p.comment_id}`);
              comments.find((c) => c.id === p.comment_id)!.body = p.body;
            },
          },
        },
      };
      const context = { repo: { owner: "o", repo: "r" }, issue: { number: 7 } };
      const env = { STACK: stack, REPORT: file };
      const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (
        ...args: string[]
      ) => (...args: unknown[]) => Promise<void>;
      const script = new AsyncFunction("github", "context", "require", "process", String(step.with!.script));
      return script(github, context, require, { env }).then(() => calls);
    }

    it("is posted once per stack, then edited in place; other comments are left alone", async () => {
      const quoted = "> <!-- edgeplane-plan-diff stack=prod -->\nwhy is this here?";
      const comments: Comment[] = [{ id: 1, user: { type: "User" }, body: quoted }];
      assert.deepEqual(await postReport(comments, "prod", "first\n"), ["list", "create"]);
      assert.deepEqual(await postReport(comments, "staging", "other\n"), ["list", "create"]);
      assert.deepEqual(await postReport(comments, "prod", "second\n"), ["list", "update 2"]);
      assert.deepEqual(await postReport(comments, "prod", "second\n"), ["list"]);
      assert.deepEqual(comments, [
        { id: 1, user: { type: "User" }, body: quoted },
        { id: 2, user: { type: "Bot" }, body: "<!-- edgeplane-plan-diff stack=prod -->\nsecond\n" },
        { id: 3, user: { type: "Bot" }, body: "<!-- edgeplane-plan-diff stack=staging -->\nother\n" },
      ]);
    });
  });
});
