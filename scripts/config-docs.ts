/**
 * `npm run docs:config`: writes docs/config-reference.md and the `config:` block of
 * Pulumi.yaml from the config schema (model/schema.ts), formatted as prettier would.
 * `--check` writes nothing and exits 1 when either file differs from what it would write.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { configDocs } from "../model/docs";

const root = path.join(__dirname, "..");

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { check: { type: "boolean", default: false } } });
  const stale: string[] = [];
  for (const [file, text] of Object.entries(await configDocs(root))) {
    const target = path.join(root, file);
    const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : undefined;
    if (current === text) continue;
    stale.push(file);
    if (!values.check) {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, text);
      console.log(`docs:config: wrote ${file}`);
    }
  }
  if (values.check && stale.length > 0) {
    console.error(`docs:config: ${stale.join(", ")} differ from model/schema.ts; run: npm run docs:config`);
    return 1;
  }
  if (stale.length === 0) console.log("docs:config: up to date");
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
