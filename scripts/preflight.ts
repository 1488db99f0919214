/**
 * npm run preflight -- --stack <name> [--stack-file <file>]
 *
 * Checks, before anything is created, that the Cloudflare credential in
 * CLOUDFLARE_API_TOKEN can do what the stack needs. Exit 0 when every check passed, 1
 * otherwise. CLOUDFLARE_API_BASE_URL overrides the API address (for tests).
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "../model";
import { loadStackConfig, PlanInputError } from "../plan/config";
import { formatChecks, preflight } from "../preflight";

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { stack: { type: "string" }, "stack-file": { type: "string" } } });
  if (!values.stack) {
    console.error("usage: npm run preflight -- --stack <name> [--stack-file <file>]");
    return 2;
  }
  const root = path.join(__dirname, "..");
  try {
    const config = loadStackConfig(root, values.stack, values["stack-file"] && path.resolve(values["stack-file"]));
    const checks = await preflight(config, process.env);
    console.log(formatChecks(checks));
    return checks.every((c) => c.ok) ? 0 : 1;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof PlanInputError) {
      console.error(err.message);
      return 1;
    }
    console.error(`preflight: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

main().then((code) => process.exit(code));
