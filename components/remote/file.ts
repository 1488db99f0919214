import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { installScript, removeScript } from "./script";

export type Connection = command.types.input.remote.ConnectionArgs;

export interface RemoteFileArgs {
  /** SSH connection to the host; a Pulumi secret (it carries the private key). */
  readonly connection: pulumi.Input<Connection>;
  /** Name of the host in the stack config (for the plan manifest). */
  readonly host: string;
  /** Absolute path of the file on the host. */
  readonly path: string;
  /** File content. Must not carry a secret: rendered files never do. */
  readonly content: pulumi.Input<string>;
  /** Owning user (and group of the same name). */
  readonly owner: string;
  /** Octal mode, e.g. "0644". */
  readonly mode: string;
  /** Service the file belongs to; omitted for host-wide files. */
  readonly service?: string;
  /** Shell check of the candidate file at "$candidate"; see InstallSpec.validate. */
  readonly validate?: string;
}

/**
 * One file on one host, installed by the protocol in script.ts. The component's own
 * inputs and outputs (host, path, owner, mode, service, sha256) are what the plan
 * manifest, `pulumi preview` and the policy pack see; the content travels only on the
 * command's stdin.
 *
 * The command has no `triggers`: a trigger change means replace, and a replace runs
 * the old command's delete after the new create, which would remove the file just
 * written (pulumi/pulumi-command#189). A content change is an ordinary update instead, which
 * re-runs `create`; no change runs nothing.
 */
export class RemoteFile extends pulumi.ComponentResource {
  public readonly path: string;
  public readonly sha256: pulumi.Output<string>;
  /** The command that installs the file: depend on it to order work after the install. */
  public readonly install: command.remote.Command;

  constructor(name: string, args: RemoteFileArgs, opts?: pulumi.ComponentResourceOptions) {
    // Rendered content is a plain string: hashed right here, the hash and the install
    // script need no Output and no apply (each Output is a dozen promises per file).
    const hash = (c: string) => createHash("sha256").update(c).digest("hex");
    const sha256: pulumi.Input<string> =
      typeof args.content === "string" ? hash(args.content) : pulumi.output(args.content).apply(hash);
    const described = {
      host: args.host,
      path: args.path,
      owner: args.owner,
      mode: args.mode,
      service: args.service ?? null,
      sha256,
    };
    super("edgeplane:index:RemoteFile", name, described, opts);
    this.path = args.path;
    this.sha256 = pulumi.output(sha256);
    const description = `${args.path} on ${args.host}`;
    const script = (hash: string) =>
      installScript({
        path: args.path,
        owner: args.owner,
        mode: args.mode,
        description,
        sha256: hash,
        ...(args.validate ? { validate: args.validate } : {}),
      });
    this.install = new command.remote.Command(
      `${name}-install`,
      {
        connection: args.connection,
        stdin: args.content,
        create: typeof sha256 === "string" ? script(sha256) : sha256.apply(script),
        delete: removeScript({ path: args.path, description }),
        // The validator's message is the useful output; the file content never is.
        logging: "stderr",
      },
      // The component's own dependencies are the install's: ordering between files
      // (clusters before listeners, pod units before containers) must not depend on
      // whether the engine passes a component's dependsOn down to its children.
      { parent: this, ...(opts?.dependsOn ? { dependsOn: opts.dependsOn } : {}) },
    );
    // The same description as outputs: the engine records a component's outputs, and
    // stack-wide checks (the policy pack) read them.
    this.registerOutputs(described);
  }
}
