/**
 * The offline plan claims to show what `pulumi preview` would. For every stack, the
 * plan from the mock runtime (`npm run plan`) and the plan from the real engine's
 * preview (`npm run plan -- --engine real`) must register the same resources (type,
 * name, parent) with the same inputs, secrets aside, and send the same bytes for every
 * file under hosts/ (in the engine's preview, a pod's files are its component's inputs;
 * a host-wide file's content is its install command's stdin).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { SECRET_PLACEHOLDER } from "../../plan/config";
import { UNKNOWN_PLACEHOLDER } from "../../plan/engine";
import type { Plan } from "../../plan/manifest";
import { pulumiTools, repoRoot, skipWithoutPulumi, STACKS } from "../support/pulumi";
import { toolsDir } from "../support/tools";

const run = promisify(execFile);

async function plan(stack: string, stackFile: string, out: string, engine: "mock" | "real"): Promise<Plan> {
  await run(
    process.execPath,
    ["--import", "tsx", "scripts/plan.ts", "--stack", stack, "--stack-file", stackFile, "--out", out, "--engine", engine],
    { cwd: repoRoot, env: { ...process.env, EDGEPLANE_TOOLS_DIR: toolsDir }, maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(fs.readFileSync(path.join(out, stack, "plan.json"), "utf8")) as Plan;
}

/** Every file under `dir`, relative path → bytes. */
function tree(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else files.set(path.relative(dir, full), fs.readFileSync(full));
    }
  };
  walk(dir);
  return files;
}

/**
 * The mock plan with every value it shows as "[secret]" taken as the engine shows it:
 * the engine prints a secret known at preview as "[secret]" too, and a secret generated
 * only at `up` (a password, a new token) as unknown. Nothing else may differ.
 */
function secretsAside(mock: unknown, real: unknown): unknown {
  if (mock === SECRET_PLACEHOLDER && real === UNKNOWN_PLACEHOLDER) return real;
  if (Array.isArray(mock) && Array.isArray(real)) return mock.map((m, i) => secretsAside(m, real[i]));
  if (mock !== null && typeof mock === "object" && real !== null && typeof real === "object") {
    const r = real as Record<string, unknown>;
    return Object.fromEntries(Object.entries(mock as Record<string, unknown>).map(([k, v]) => [k, secretsAside(v, r[k])]));
  }
  return mock;
}

describe("parity of the offline plan with the real engine", { skip: skipWithoutPulumi() }, () => {
  let out: string;
  before(() => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-parity-"));
    assert.ok(fs.existsSync(path.join(pulumiTools, "bin", "pulumi")));
  });
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  for (const stack of STACKS) {
    it(`registers the same resources and inputs, and sends the same files, for ${stack.name}`, async () => {
      const mockDir = path.join(out, "mock");
      const realDir = path.join(out, "real");
      const [mock, real] = await Promise.all([
        plan(stack.name, stack.file, mockDir, "mock"),
        plan(stack.name, stack.file, realDir, "real"),
      ]);
      const names = (p: Plan) => p.resources.map((r) => `${r.type}::${r.name} (parent ${r.parent})`);
      assert.deepEqual(names(real), names(mock));
      const byName = new Map(real.resources.map((r) => [`${r.type}::${r.name}`, r]));
      for (const resource of mock.resources) {
        const engine = byName.get(`${resource.type}::${resource.name}`)!;
        assert.deepEqual(engine, secretsAside(resource, engine), `${resource.type}::${resource.name}`);
      }
      assert.deepEqual(real.files, mock.files);
      const mockFiles = tree(path.join(mockDir, stack.name, "hosts"));
      const realFiles = tree(path.join(realDir, stack.name, "hosts"));
      assert.deepEqual([...realFiles.keys()].sort(), [...mockFiles.keys()].sort());
      for (const [file, bytes] of mockFiles) assert.ok(bytes.equals(realFiles.get(file)!), `hosts/${file} differs`);
      assert.ok(mockFiles.size > 0);
    });
  }
});
