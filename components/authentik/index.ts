import * as pulumi from "@pulumi/pulumi";
import { serviceUser } from "../../model/topology";
import type { Model, Service } from "../../model/types";
import { RemoteFile, type Connection } from "../remote/file";
import {
  appBlueprintPath,
  authentikService,
  DEFAULT_FLOWS,
  outpostBlueprintPath,
  protectedServices,
  renderAppBlueprint,
  renderOutpostBlueprint,
  type AuthentikFlows,
} from "./render";

export { DEFAULT_FLOWS, type AuthentikFlows } from "./render";

export interface AuthentikAppArgs {
  /** The validated stack model; must configure `authentik`. */
  readonly platform: Model;
  /** The protected service (one with `auth`) this application guards. */
  readonly service: Service;
  /** SSH connection to the host that runs the Authentik service (where the blueprint goes), not the protected service's. */
  readonly connection: pulumi.Input<Connection>;
  /** Flow slugs of the proxy provider; Authentik's defaults when omitted. */
  readonly flows?: AuthentikFlows;
}

/**
 * One protected service as an Authentik application: the blueprint with its proxy
 * provider (forward auth, single application), the application and one binding per
 * allowed group, installed in the Authentik host's blueprint folder.
 *
 * The blueprint folder belongs to the Authentik service user, so pass
 * `dependsOn: [<the Authentik SidecarPod>]`: the user must exist before the install.
 */
export class AuthentikApp extends pulumi.ComponentResource {
  /** Absolute path of the blueprint on the Authentik host. */
  public readonly blueprintPath: string;
  /** The blueprint's install: depend on it to order work after the file is in place. */
  public readonly blueprint: RemoteFile;

  constructor(name: string, args: AuthentikAppArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edgeplane:index:AuthentikApp", name, {}, opts);
    const { platform, service, connection } = args;
    if (!platform.services.some((s) => s.name === service.name)) {
      throw new pulumi.ResourceError(`service "${service.name}" is not part of the platform model`, this);
    }
    if (!service.auth) {
      throw new pulumi.ResourceError(`service "${service.name}" has no auth, so it gets no Authentik application`, this);
    }
    if (!platform.authentik) {
      throw new pulumi.ResourceError(`service "${service.name}" has auth, but the stack configures no edgeplane:authentik`, this);
    }
    const authentik = authentikService(platform);
    this.blueprintPath = appBlueprintPath(platform, service);
    this.blueprint = new RemoteFile(
      `${name}-blueprint`,
      {
        connection,
        host: authentik.host,
        path: this.blueprintPath,
        content: renderAppBlueprint(platform, service, args.flows ?? DEFAULT_FLOWS),
        owner: serviceUser(authentik),
        mode: "0644",
        service: service.name,
      },
      { parent: this },
    );
    this.registerOutputs({ blueprintPath: this.blueprintPath });
  }
}

export interface AuthentikOutpostArgs {
  /** The validated stack model; must configure `authentik` and have at least one protected service. */
  readonly platform: Model;
  /** SSH connection to the host that runs the Authentik service. */
  readonly connection: pulumi.Input<Connection>;
  /** The applications of every protected service: the outpost blueprint applies theirs, so their files go first. */
  readonly apps: readonly AuthentikApp[];
  /** Names of proxy providers managed outside edgeplane that must stay on the embedded outpost. */
  readonly extraProviders?: readonly string[];
}

/**
 * The embedded outpost's provider list, one blueprint for the whole platform (a
 * provider list in a blueprint replaces the list, so exactly one place may write it).
 */
export class AuthentikOutpost extends pulumi.ComponentResource {
  /** Absolute path of the blueprint on the Authentik host. */
  public readonly blueprintPath: string;

  constructor(name: string, args: AuthentikOutpostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edgeplane:index:AuthentikOutpost", name, {}, opts);
    const { platform, connection, apps } = args;
    const expected = protectedServices(platform)
      .map((s) => appBlueprintPath(platform, s))
      .sort();
    const given = apps.map((a) => a.blueprintPath).sort();
    if (expected.length === 0) {
      throw new pulumi.ResourceError("no service has auth: an outpost blueprint would empty the embedded outpost", this);
    }
    if (JSON.stringify(expected) !== JSON.stringify(given)) {
      // The blueprint names every protected service's app blueprint by path; one that
      // is not installed first would fail it (metaapplyblueprint, required).
      throw new pulumi.ResourceError(
        `the outpost needs exactly one AuthentikApp per protected service: expected ${expected.join(", ")}; got ${given.join(", ") || "none"}`,
        this,
      );
    }
    const authentik = authentikService(platform);
    this.blueprintPath = outpostBlueprintPath(platform);
    new RemoteFile(
      `${name}-blueprint`,
      {
        connection,
        host: authentik.host,
        path: this.blueprintPath,
        content: renderOutpostBlueprint(platform, args.extraProviders ?? []),
        owner: serviceUser(authentik),
        mode: "0644",
        service: authentik.name,
      },
      { parent: this, dependsOn: apps.map((a) => a.blueprint.install) },
    );
    this.registerOutputs({ blueprintPath: this.blueprintPath });
  }
}
