import * as pulumi from "@pulumi/pulumi";
import * as tailscale from "@pulumi/tailscale";
import type { Model } from "../../model/types";
import { renderTailnetPolicy, tailnetPolicyProblems, type PolicyDocument, type TailnetTestUsers } from "./render";

export interface TailnetPolicyArgs {
  /** The validated stack model (hosts, tailnet services, their groups). */
  readonly platform: Model;
  /** The operator-owned part of the policy file (groups, their own ACLs, grants, ssh, tests, …). */
  readonly base: PolicyDocument;
  /** Identities the generated Tailscale `tests` run as. */
  readonly testUsers?: TailnetTestUsers;
  /**
   * Adopt the tailnet's existing policy instead of creating one: the resource is
   * imported (`import: "acl"`; the provider ignores the ID: tailscale/terraform-provider-tailscale tailscale/resource_acl.go) and its content left as it is for this
   * run. Turn it off afterwards: the next `pulumi preview` then shows the whole change
   * from the existing policy to the rendered one.
   */
  readonly adopt?: boolean;
}

/**
 * The tailnet's whole policy file, owned by this stack alone (tailscale/terraform-provider-tailscale#182, pulumi/pulumi-tailscale#208): one
 * `tailscale.Acl`. It never overwrites a policy it did not create or adopt
 * (`overwriteExistingContent: false` makes Tailscale answer 412 instead), and leaves
 * the policy in place on destroy rather than resetting the tailnet to allow-all.
 */
export class TailnetPolicy extends pulumi.ComponentResource {
  /** The rendered policy text (HuJSON: JSON with a leading comment). */
  public readonly policy: string;

  constructor(name: string, args: TailnetPolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edgeplane:index:TailnetPolicy", name, {}, opts);
    const problems = tailnetPolicyProblems(args.platform, args.base, args.testUsers);
    if (problems.length > 0) throw new pulumi.ResourceError(problems.join("\n"), this);
    this.policy = renderTailnetPolicy(args.platform, args.base, args.testUsers);
    new tailscale.Acl(
      `${name}-acl`,
      { acl: this.policy, overwriteExistingContent: false, resetAclOnDestroy: false },
      {
        parent: this,
        // Importing with a different `acl` would fail ("inputs to import do not match"),
        // and the existing policy is by definition not the rendered one yet.
        ...(args.adopt ? { import: "acl", ignoreChanges: ["acl"] } : {}),
      },
    );
    this.registerOutputs({ policy: this.policy });
  }
}
