import type * as log from "@pulumi/pulumi/log";

/**
 * Marks a secret in the RPC messages the Node.js SDK exchanges with the engine
 * (`specialSecretSig`, sdk/nodejs/runtime/rpc.ts).
 */
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/**
 * Keeps secret values out of the SDK's debug log. The SDK (3.248.0,
 * sdk/nodejs/runtime/resource.ts) logs every RegisterResource response at debug level,
 * `resp: ${response}`, and a response carries the resource's outputs with secret values
 * in clear: `pulumi up --debug` would print the SSH key, every pod token and every
 * generated app secret. A debug message that carries a secret keeps its first part
 * (which resource, which call) and loses the dump. Everything else is left as it is.
 */
export function withholdSecretsFromDebugLog(): void {
  // The module's own exports object, which the SDK's runtime calls through (an ES
  // namespace import may be a read-only copy of it).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sdkLog = require("@pulumi/pulumi/log") as { debug: typeof log.debug };
  const debug = sdkLog.debug;
  sdkLog.debug = (message, ...rest) => debug(withholdSecrets(message), ...rest);
}

export function withholdSecrets(message: string): string {
  if (!message.includes(SECRET_SIG)) return message;
  const cut = message.indexOf("resp: ");
  const head = cut >= 0 && !message.slice(0, cut).includes(SECRET_SIG) ? message.slice(0, cut + "resp: ".length) : "";
  return `${head}[withheld by edgeplane: it carries secret values]`;
}
