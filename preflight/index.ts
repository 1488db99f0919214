/**
 * `npm run preflight -- --stack <s>`: the checks to run before a stack's first
 * `pulumi up` (and in CI), with the stack's own config and the credentials the Pulumi
 * providers will use. It only reads: nothing is created.
 *
 * The config goes through the same validation as the program (buildModel, and the
 * tailnet-policy rules index.ts applies), so an invalid config stops here, before any
 * API call, with the same errors.
 */
import fs from "node:fs";
import { buildModel, ConfigError, projectConfig } from "../model";
import type { Model } from "../model/types";
import { tailnetPolicyProblems } from "../components/tailnet/render";
import { SECRET_PLACEHOLDER, type StackConfig } from "../plan/config";
import { failed, fail, formatChecks, redact, skip, warn, type Check } from "./check";
import { checkCloudflare, CloudflareApi, DEFAULT_CLOUDFLARE_API, type CloudflareNeeds, type ZoneNeed } from "./cloudflare";
import { checkHostKeys } from "./ssh";
import { checkTailscale, DEFAULT_TAILSCALE_API, type TailscaleCredential } from "./tailscale";

export { formatChecks, type Check } from "./check";

/** A mistake in how preflight was called (an unreadable credential file, …): one line, no stack trace. */
export class PreflightInputError extends Error {
  override name = "PreflightInputError";
}

/** The stack's model from its config, exactly as index.ts builds it (throws ConfigError). */
export function modelOf(config: StackConfig): Model {
  const model = buildModel(projectConfig(config.values, config.project));
  const policyProblems = model.tailscale ? tailnetPolicyProblems(model, model.tailscale.policy, model.tailscale.testUsers) : [];
  if (policyProblems.length > 0) throw new ConfigError(policyProblems);
  return model;
}

/**
 * What the stack asks of the Cloudflare credential (components/pod): records for every
 * service in `cloudflare.zoneId`; with `tls.issuer: cloudflare-dns`, one API token per
 * pod, granting DNS Write and Zone Read on the challenge zone when there is one, else
 * on the main zone.
 */
export function cloudflareNeeds(model: Model): CloudflareNeeds {
  const { cloudflare } = model;
  const mintsTokens = model.tls.issuer === "cloudflare-dns" && model.services.length > 0;
  // Read defensively: the challenge zone is optional in the model.
  const challenge = mintsTokens ? cloudflare.challengeZone : undefined;
  const zones: ZoneNeed[] = [
    { key: "edgeplane:cloudflare.zoneId", id: cloudflare.zoneId, podTokens: mintsTokens && !challenge },
    ...(challenge ? [{ key: "edgeplane:cloudflare.challengeZone.id", id: challenge.id, podTokens: true }] : []),
  ];
  return {
    zones,
    mintsTokens,
    ...(mintsTokens
      ? {}
      : {
          noTokensBecause:
            model.tls.issuer === "cloudflare-dns"
              ? "the stack has no services, so no pod tokens"
              : `edgeplane:tls.issuer is ${model.tls.issuer}, so pods get no Cloudflare token`,
        }),
    groups: {
      dnsWrite: {
        id: cloudflare.permissionGroups.dnsWrite,
        name: "DNS Write",
        key: "edgeplane:cloudflare.permissionGroups.dnsWrite",
      },
      zoneRead: {
        id: cloudflare.permissionGroups.zoneRead,
        name: "Zone Read",
        key: "edgeplane:cloudflare.permissionGroups.zoneRead",
      },
    },
  };
}

export interface PreflightOptions {
  /** Overrides the Cloudflare API address (tests; a proxy). */
  readonly cloudflareApi?: string;
  /** Overrides the Tailscale API address. */
  readonly tailscaleApi?: string;
  /** Leaves the SSH host keys unchecked (no host reachable from where preflight runs). */
  readonly skipSsh?: boolean;
}

export interface PreflightReport {
  /** One line saying what was checked against what (no credential in it). */
  readonly heading: string;
  readonly checks: readonly Check[];
  /** Every credential value seen, so the output can be scrubbed of them. */
  readonly secrets: readonly string[];
}

/** A provider setting from the stack file: plain, encrypted (`secure:`), or absent. */
function stackSetting(config: StackConfig, key: string): { value?: string; encrypted: boolean } {
  const value = config.values[key];
  if (value === undefined) return { encrypted: false };
  if (config.secretKeys.includes(key) && value === SECRET_PLACEHOLDER) return { encrypted: true };
  return { value, encrypted: false };
}

const nonEmpty = (v: string | undefined) => (v && v.trim() !== "" ? v : undefined);

/**
 * The token the Pulumi Cloudflare provider will use: `cloudflare:apiToken` from the
 * stack when it is set (provider config wins over the environment), else
 * CLOUDFLARE_API_TOKEN. An encrypted stack value cannot be read without the Pulumi CLI.
 */
function cloudflareToken(config: StackConfig, env: NodeJS.ProcessEnv): { token?: string; source: string; notes: Check[] } {
  const fromStack = stackSetting(config, "cloudflare:apiToken");
  const fromEnv = nonEmpty(env.CLOUDFLARE_API_TOKEN);
  const file = `Pulumi.${config.stack}.yaml`;
  if (fromStack.value) {
    return {
      token: fromStack.value,
      source: `cloudflare:apiToken in ${file}`,
      notes: [
        warn(
          `cloudflare:apiToken is stored in plain text in ${file}`,
          "encrypt it: pulumi config set --secret cloudflare:apiToken (then preflight reads CLOUDFLARE_API_TOKEN)",
        ),
      ],
    };
  }
  if (fromStack.encrypted) {
    if (!fromEnv) {
      return {
        source: "cloudflare:apiToken",
        notes: [
          fail(
            `the stack's cloudflare:apiToken is encrypted, and preflight cannot decrypt it`,
            `pass it in the environment: CLOUDFLARE_API_TOKEN="$(pulumi config get cloudflare:apiToken --stack ${config.stack})" npm run preflight -- --stack ${config.stack}`,
          ),
        ],
      };
    }
    return {
      token: fromEnv,
      source: "CLOUDFLARE_API_TOKEN",
      notes: [
        warn(
          `the stack sets cloudflare:apiToken (encrypted), which the provider uses instead of CLOUDFLARE_API_TOKEN; preflight checked CLOUDFLARE_API_TOKEN`,
          "make sure both are the same token",
        ),
      ],
    };
  }
  if (!fromEnv) {
    return {
      source: "CLOUDFLARE_API_TOKEN",
      notes: [
        fail(
          "CLOUDFLARE_API_TOKEN is not set (and the stack sets no cloudflare:apiToken)",
          "export the Cloudflare API token `pulumi up` will use: CLOUDFLARE_API_TOKEN=… npm run preflight -- --stack " +
            config.stack,
        ),
      ],
    };
  }
  return { token: fromEnv, source: "CLOUDFLARE_API_TOKEN", notes: [] };
}

/**
 * The Tailscale provider's credential (@pulumi/tailscale provider.d.ts): environment first, then a
 * plain stack setting; like the provider, a value `file:<path>` is read from that file.
 */
function tailscaleCredential(config: StackConfig, env: NodeJS.ProcessEnv): { credential?: TailscaleCredential; notes: Check[] } {
  const setting = (envName: string, key: string) => {
    const raw = nonEmpty(env[envName]) ?? stackSetting(config, key).value;
    const source = nonEmpty(env[envName]) ? envName : key;
    if (!raw?.startsWith("file:")) return { value: raw, source };
    try {
      return { value: nonEmpty(fs.readFileSync(raw.slice("file:".length), "utf8").trim()), source };
    } catch (err) {
      throw new PreflightInputError(
        `${source}: cannot read ${raw.slice("file:".length)} (${(err as NodeJS.ErrnoException).code ?? err})`,
      );
    }
  };
  const { value: apiKey, source: apiKeySource } = setting("TAILSCALE_API_KEY", "tailscale:apiKey");
  const { value: clientId, source: clientIdSource } = setting("TAILSCALE_OAUTH_CLIENT_ID", "tailscale:oauthClientId");
  const { value: clientSecret } = setting("TAILSCALE_OAUTH_CLIENT_SECRET", "tailscale:oauthClientSecret");
  if (apiKey) {
    return {
      credential: { kind: "apiKey", apiKey, source: apiKeySource },
      notes:
        clientId || clientSecret
          ? [warn("both a Tailscale API key and an OAuth client are set; the provider accepts only one", "unset one of them")]
          : [],
    };
  }
  if (clientId && clientSecret)
    return { credential: { kind: "oauth", clientId, clientSecret, source: clientIdSource }, notes: [] };
  if (clientId || clientSecret) {
    return {
      notes: [
        fail(
          `${clientId ? "TAILSCALE_OAUTH_CLIENT_ID" : "TAILSCALE_OAUTH_CLIENT_SECRET"} is set without ${clientId ? "TAILSCALE_OAUTH_CLIENT_SECRET" : "TAILSCALE_OAUTH_CLIENT_ID"}`,
          "set both, or use TAILSCALE_API_KEY",
        ),
      ],
    };
  }
  return { notes: [] };
}

export async function runPreflight(
  config: StackConfig,
  env: NodeJS.ProcessEnv,
  options: PreflightOptions = {},
): Promise<PreflightReport> {
  // First, and before any credential is looked at: an invalid config throws here.
  const model = modelOf(config);
  // Every credential is resolved before the first API call (a credential file that
  // cannot be read stops the run here).
  const cf = cloudflareToken(config, env);
  const ts = tailscaleCredential(config, env);
  const secrets = [
    ...(cf.token ? [cf.token] : []),
    ...(ts.credential ? [ts.credential.kind === "apiKey" ? ts.credential.apiKey : ts.credential.clientSecret] : []),
  ];
  const checks: Check[] = [];

  const cfBase =
    nonEmpty(options.cloudflareApi) ??
    nonEmpty(env.CLOUDFLARE_API_BASE_URL) ??
    stackSetting(config, "cloudflare:baseUrl").value ??
    DEFAULT_CLOUDFLARE_API;
  checks.push(...cf.notes);
  if (cf.token) checks.push(...(await checkCloudflare(new CloudflareApi(cfBase, cf.token), cloudflareNeeds(model))));

  checks.push(...ts.notes);
  if (ts.credential) {
    const tsBase =
      nonEmpty(options.tailscaleApi) ??
      nonEmpty(env.TAILSCALE_BASE_URL) ??
      stackSetting(config, "tailscale:baseUrl").value ??
      DEFAULT_TAILSCALE_API;
    const tailnet = nonEmpty(env.TAILSCALE_TAILNET) ?? stackSetting(config, "tailscale:tailnet").value ?? "-";
    checks.push(...(await checkTailscale({ base: tsBase, tailnet, credential: ts.credential })));
  } else if (model.tailscale && ts.notes.length === 0) {
    const encrypted = ["tailscale:apiKey", "tailscale:oauthClientSecret"].find((k) => stackSetting(config, k).encrypted);
    checks.push(
      skip(
        encrypted
          ? `Tailscale: the stack's ${encrypted} is encrypted and preflight cannot decrypt it; set ${encrypted === "tailscale:apiKey" ? "TAILSCALE_API_KEY" : "TAILSCALE_OAUTH_CLIENT_ID and TAILSCALE_OAUTH_CLIENT_SECRET"} to check it`
          : "Tailscale: the stack owns the tailnet policy (edgeplane:tailscale), but no credential is set (TAILSCALE_API_KEY, or TAILSCALE_OAUTH_CLIENT_ID and TAILSCALE_OAUTH_CLIENT_SECRET)",
      ),
    );
  }

  checks.push(
    ...(options.skipSsh ? [skip("SSH host keys: not checked (--skip-ssh)")] : await checkHostKeys(model.hosts, config.stack)),
  );

  return {
    heading: `preflight for stack ${config.stack}: Cloudflare API ${cfBase}, token from ${cf.source}`,
    checks,
    secrets,
  };
}

/** The report as printed: heading, one line per check, and a verdict. Credentials scrubbed. */
export function formatReport(report: PreflightReport): string {
  const bad = failed(report.checks);
  const verdict =
    bad === 0
      ? `preflight passed: ${report.checks.filter((c) => c.status === "ok").length} checks ok`
      : `preflight FAILED: ${bad} check${bad === 1 ? "" : "s"} failed; fix ${bad === 1 ? "it" : "them"} before \`pulumi up\``;
  return redact([report.heading, formatChecks(report.checks), verdict].join("\n"), report.secrets);
}

export function passed(report: PreflightReport): boolean {
  return failed(report.checks) === 0;
}
