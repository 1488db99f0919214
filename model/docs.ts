/**
 * The files generated from the config schema, as they must be on disk: the reference
 * and Pulumi.yaml with its `config:` block replaced, both formatted by prettier with
 * the repository's settings (so `prettier --check` and this agree).
 */
import fs from "node:fs";
import path from "node:path";
import * as prettier from "prettier";
import { configReference, renderPulumiConfig, renderReferenceMarkdown } from "./reference";

export const REFERENCE_FILE = "docs/config-reference.md";
const GENERATED_MARK = "# Generated from model/schema.ts";

/** File (relative to `root`) → its generated text. */
export async function configDocs(root: string): Promise<Record<string, string>> {
  const entries = configReference();
  const format = async (file: string, text: string) =>
    prettier.format(text, { ...(await prettier.resolveConfig(path.join(root, file))), filepath: path.join(root, file) });
  const project = fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8");
  return {
    [REFERENCE_FILE]: await format(REFERENCE_FILE, renderReferenceMarkdown(entries)),
    "Pulumi.yaml": await format("Pulumi.yaml", `${handWritten(project)}\n${renderPulumiConfig(entries)}`),
  };
}

/** The hand-written head of Pulumi.yaml: everything before the generated block (or, the first time, before `config:`). */
function handWritten(project: string): string {
  const lines = project.split("\n");
  let end = lines.findIndex((l) => l.startsWith(GENERATED_MARK));
  if (end < 0) {
    end = lines.findIndex((l) => l.startsWith("config:"));
    while (end > 0 && lines[end - 1]!.startsWith("#")) end--;
  }
  return lines
    .slice(0, end < 0 ? lines.length : end)
    .join("\n")
    .trimEnd();
}
