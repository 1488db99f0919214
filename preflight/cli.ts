/**
 * The command line of `npm run preflight` (scripts/preflight.ts runs it; tests call it
 * in-process). Exit status: 0 every check passed, 1 a check failed or the stack config
 * is invalid, 2 wrong usage.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "../model";
import { loadStackConfig, PlanInputError } from "../plan/config";
import { redact } from "./check";
import { formatReport, passed, PreflightInputError, runPreflight } from "./index";

export const USAGE =
  "usage: npm run preflight -- --stack <name> [--stack-file <Pulumi.<name>.yaml>] [--cloudflare-api <url>] [--tailscale-api <url>] [--skip-ssh]";

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const console_: Output = { out: (t) => console.log(t), err: (t) => console.error(t) };

export async function main(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  io: Output = console_,
  root = path.join(__dirname, ".."),
): Promise<number> {
  let values: {
    stack?: string;
    "stack-file"?: string;
    "cloudflare-api"?: string;
    "tailscale-api"?: string;
    "skip-ssh"?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        stack: { type: "string" },
        // A stack file outside the project root (tests; trying a config before adding it).
        "stack-file": { type: "string" },
        // API addresses (a local stand-in in tests); default: the providers' own settings.
        "cloudflare-api": { type: "string" },
        "tailscale-api": { type: "string" },
        // No host's SSH address is reachable from here (a CI runner off the tailnet).
        "skip-ssh": { type: "boolean" },
      },
      strict: true,
    }));
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!values.stack) {
    io.err(USAGE);
    return 2;
  }
  // Whatever goes wrong below, no credential from the environment is printed.
  const envSecrets = [env.CLOUDFLARE_API_TOKEN, env.TAILSCALE_API_KEY, env.TAILSCALE_OAUTH_CLIENT_SECRET].filter(
    (v): v is string => !!v,
  );
  try {
    const config = loadStackConfig(root, values.stack, values["stack-file"] && path.resolve(values["stack-file"]));
    const report = await runPreflight(config, env, {
      ...(values["cloudflare-api"] ? { cloudflareApi: values["cloudflare-api"] } : {}),
      ...(values["tailscale-api"] ? { tailscaleApi: values["tailscale-api"] } : {}),
      ...(values["skip-ssh"] ? { skipSsh: true } : {}),
    });
    io.out(redact(formatReport(report), envSecrets));
    return passed(report) ? 0 : 1;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof PlanInputError || err instanceof PreflightInputError) {
      io.err(redact(`preflight: ${err.message}`, envSecrets));
      return 1;
    }
    io.err(redact(`preflight: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, envSecrets));
    return 1;
  }
}
