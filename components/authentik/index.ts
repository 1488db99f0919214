import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { serviceUser } from "../../model/topology";
import type { Model, Service } from "../../model/types";
import { RemoteFile, type Connection } from "../remote/file";
import { applyBlueprintScript, blueprintValidator, removeAppScript, type AuthentikTarget } from "./apply";
import {
  appBlueprintName,
  appBlueprintPath,
  appIdentity,
  authentikContainer,
  authentikService,
  blueprintInstancePath,
  DEFAULT_FLOWS,
  OUTPOST_BLUEPRINT_NAME,
  outpostBlueprintPath,
  protectedServices,
  renderAppBlueprint,
  renderAppRemovalBlueprint,
  renderOutpostBlueprint,
  type AppIdentity,
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
  /** Flow slugs of the proxy provider; the stack's `authentik.flows`, else Authentik's defaults, when omitted. */
  readonly flows?: AuthentikFlows;
}

/**
 * Installs one blueprint in the Authentik host's blueprint folder, checked by
 * Authentik's importer dry run before it replaces the installed file, then applies it
 * and fails unless Authentik recorded it as applied (apply.ts).
 */
function installBlueprint(
  parent: pulumi.Resource,
  name: string,
  args: {
    readonly platform: Model;
    readonly connection: pulumi.Input<Connection>;
    readonly path: string;
    readonly blueprintName: string;
    readonly content: string;
    readonly service: string;
    /** An application blueprint: the objects it owns, and the blueprints that remove them. */
    readonly app?: { readonly identity: AppIdentity; readonly removal: string; readonly removalKeepingApp: string };
  },
  after: pulumi.Input<pulumi.Resource>[],
): { file: RemoteFile; applied: command.remote.Command } {
  const authentik = authentikService(args.platform);
  const target: AuthentikTarget = { user: serviceUser(authentik), container: authentikContainer(args.platform) };
  const file = new RemoteFile(
    `${name}-blueprint`,
    {
      connection: args.connection,
      host: authentik.host,
      path: args.path,
      content: args.content,
      owner: target.user,
      mode: "0644",
      service: args.service,
      validate: blueprintValidator(target, args.path, args.app?.identity),
    },
    { parent, dependsOn: after },
  );
  const ref = {
    file: args.path,
    instancePath: blueprintInstancePath(args.path),
    name: args.blueprintName,
    ...(args.app ? { app: args.app.identity } : {}),
  };
  const applied = new command.remote.Command(
    `${name}-blueprint-apply`,
    {
      connection: args.connection,
      // The text names the content hash: a changed file re-runs the apply (an update),
      // an unchanged one runs nothing. No triggers (pulumi/pulumi-command#189).
      create: file.sha256.apply((hash) => applyBlueprintScript(target, ref, hash)),
      // Authentik never deletes what a blueprint stops naming: when the service loses
      // auth or is removed, this command is deleted and removes the application itself.
      ...(args.app ? { delete: removeAppScript(target, ref, args.app.removal, args.app.removalKeepingApp) } : {}),
    },
    // Replaced (never expected: it has no triggers), the old delete must not run after
    // the new create, or it would remove the application just applied.
    { parent, dependsOn: [file.install], deleteBeforeReplace: true },
  );
  return { file, applied };
}

/**
 * One protected service as an Authentik application: the blueprint with its proxy
 * provider (forward auth, single application), the application and one binding per
 * allowed group, installed in the Authentik host's blueprint folder, validated by
 * Authentik before it replaces the installed one, and applied.
 *
 * Pass `dependsOn: [<the Authentik SidecarPod>]`: the folder belongs to the Authentik
 * service user, and the validation runs in the Authentik container, so both must
 * exist first. (A component's dependencies hold back its children: they register
 * under it only once it is registered, after its dependencies.)
 */
export class AuthentikApp extends pulumi.ComponentResource {
  /** Absolute path of the blueprint on the Authentik host. */
  public readonly blueprintPath: string;
  /** The blueprint's install: depend on it to order work after the file is in place. */
  public readonly blueprint: RemoteFile;
  /** Authentik's apply of the blueprint, checked: depend on it to order work after the application exists. */
  public readonly applied: command.remote.Command;

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
    this.blueprintPath = appBlueprintPath(platform, service);
    const { file, applied } = installBlueprint(
      this,
      name,
      {
        platform,
        connection,
        path: this.blueprintPath,
        blueprintName: appBlueprintName(service),
        content: renderAppBlueprint(platform, service, args.flows ?? platform.authentik.flows ?? DEFAULT_FLOWS),
        service: service.name,
        app: {
          identity: appIdentity(service, platform.authentik.createGroups === true),
          removal: renderAppRemovalBlueprint(service),
          removalKeepingApp: renderAppRemovalBlueprint(service, { keepApplication: true }),
        },
      },
      // Explicitly, not only through the component: the files' owner must exist first.
      dependencies(opts),
    );
    this.blueprint = file;
    this.applied = applied;
    this.registerOutputs({ blueprintPath: this.blueprintPath });
  }
}

export interface AuthentikOutpostArgs {
  /** The validated stack model; must configure `authentik`; with no protected service the outpost keeps only the extra providers. */
  readonly platform: Model;
  /** SSH connection to the host that runs the Authentik service. */
  readonly connection: pulumi.Input<Connection>;
  /** The applications of every protected service: their providers must exist before the outpost names them. */
  readonly apps: readonly AuthentikApp[];
  /** Names of proxy providers managed outside edgeplane that must stay on the embedded outpost; the stack's `authentik.extraProviders` when omitted. */
  readonly extraProviders?: readonly string[];
}

/**
 * The embedded outpost's provider list, one blueprint for the whole platform (a
 * provider list in a blueprint replaces the list, so exactly one place may write it),
 * installed only after every application's blueprint was applied, then validated and
 * applied the same way. Pass `dependsOn: [<the Authentik SidecarPod>]` as for AuthentikApp.
 */
export class AuthentikOutpost extends pulumi.ComponentResource {
  /** Absolute path of the blueprint on the Authentik host. */
  public readonly blueprintPath: string;
  /** The blueprint's install. */
  public readonly blueprint: RemoteFile;
  /** Authentik's apply of the blueprint, checked: the outpost serves every application after it. */
  public readonly applied: command.remote.Command;

  constructor(name: string, args: AuthentikOutpostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edgeplane:index:AuthentikOutpost", name, {}, opts);
    const { platform, connection, apps } = args;
    const expected = protectedServices(platform)
      .map((s) => appBlueprintPath(platform, s))
      .sort();
    const given = apps.map((a) => a.blueprintPath).sort();
    if (JSON.stringify(expected) !== JSON.stringify(given)) {
      // The outpost names every protected service's provider; one whose blueprint is
      // not applied first would fail this blueprint (`!Find` finds nothing).
      throw new pulumi.ResourceError(
        `the outpost needs exactly one AuthentikApp per protected service: expected ${expected.join(", ")}; got ${given.join(", ") || "none"}`,
        this,
      );
    }
    this.blueprintPath = outpostBlueprintPath(platform);
    const { file, applied } = installBlueprint(
      this,
      name,
      {
        platform,
        connection,
        path: this.blueprintPath,
        blueprintName: OUTPOST_BLUEPRINT_NAME,
        content: renderOutpostBlueprint(platform, args.extraProviders ?? platform.authentik?.extraProviders ?? []),
        service: authentikService(platform).name,
      },
      // After the apply, not only the install: the providers must exist in Authentik.
      [...dependencies(opts), ...apps.map((a) => a.applied)],
    );
    this.blueprint = file;
    this.applied = applied;
    this.registerOutputs({ blueprintPath: this.blueprintPath });
  }
}

/** The resources a component was told to wait for, as a list its children can wait for too. */
function dependencies(opts: pulumi.ComponentResourceOptions | undefined): pulumi.Input<pulumi.Resource>[] {
  const deps = opts?.dependsOn;
  if (!deps) return [];
  return Array.isArray(deps) ? deps : [deps as pulumi.Input<pulumi.Resource>];
}
