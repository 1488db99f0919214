/**
 * The Authentik side of forward auth, as pure functions of the model: one blueprint per
 * protected service (its proxy provider, application and group bindings) and one for
 * the embedded outpost that serves them all.
 *
 * Files land in the Authentik host's blueprint folder, which the Authentik containers
 * mount at /blueprints/edgeplane. edgeplane applies each one itself right after the
 * install (apply.ts), and Authentik re-applies it hourly; each apply is one
 * transaction (authentik/blueprints/v1/importer.py, `atomic()`), so an application never exists without its provider
 * and bindings.
 */
import { serviceHome } from "../../model/topology";
import type { AccessGrant, Model, Service } from "../../model/types";
import { blueprintEntry, Find, KeyOf, serializeBlueprint, type BlueprintEntry } from "./blueprint";

/** Flow slugs the proxy providers use. */
export interface AuthentikFlows {
  /** Runs when a signed-in user first opens the application. */
  readonly authorization: string;
  /** Runs when the user signs out of the application. */
  readonly invalidation: string;
}

/** The flows a fresh Authentik installs from its default blueprints. */
export const DEFAULT_FLOWS: AuthentikFlows = {
  authorization: "default-provider-authorization-implicit-consent",
  invalidation: "default-provider-invalidation-flow",
};

/** The embedded outpost's `managed` key (authentik/outposts/apps.py, MANAGED_OUTPOST). */
export const EMBEDDED_OUTPOST = "goauthentik.io/outposts/embedded";

/** Where the Authentik containers see edgeplane's blueprint folder. */
export const BLUEPRINTS_IN_CONTAINER = "/blueprints/edgeplane";
/** The same folder relative to /blueprints: how Authentik names a blueprint instance's path. */
export const BLUEPRINTS_RELATIVE = "edgeplane";

/**
 * File name of the outpost blueprint. App blueprints are `edgeplane-<service>.yaml`;
 * this name has no `edgeplane-` prefix, so no service name can collide with it.
 */
export const OUTPOST_BLUEPRINT_FILE = "embedded-outpost.yaml";

/** `metadata.name` of the outpost blueprint, and so the name of its instance in Authentik. */
export const OUTPOST_BLUEPRINT_NAME = "edgeplane embedded outpost";

/** The service that runs Authentik. */
export function authentikService(model: Model): Service {
  const name = model.authentik?.service;
  const service = model.services.find((s) => s.name === name);
  if (!name || !service) throw new Error("internal: the model configures no Authentik service (edgeplane:authentik)");
  return service;
}

/** Services behind Authentik, sorted by name. */
export function protectedServices(model: Model): Service[] {
  return model.services.filter((s) => s.auth);
}

/** Blueprint (and proxy provider) name of a protected service: `edgeplane-grafana`. */
export function appBlueprintName(service: Service): string {
  return `edgeplane-${service.name}`;
}

/** Name of the expression policy that decides who may enter a protected service: `edgeplane-grafana-access`. */
export function accessPolicyName(service: Service): string {
  return `edgeplane-${service.name}-access`;
}

/**
 * The Authentik objects edgeplane owns for one protected service. edgeplane's checks
 * (apply.ts) use them to refuse an application it did not create, to remove every
 * other policy binding from its own, and to delete them when the service loses `auth`.
 */
export interface AppIdentity {
  /** The application's slug: the service name. */
  readonly slug: string;
  /** The proxy provider's name, `edgeplane-<service>`: an application with another provider is not edgeplane's. */
  readonly provider: string;
  /** The access policy's name, `edgeplane-<service>-access`: the only policy bound to the application. */
  readonly policy: string;
  /** The groups the policy lets in: each must exist in Authentik, unless the blueprint creates them. */
  readonly groups: readonly string[];
  /** The blueprint creates its missing groups (`edgeplane:authentik.createGroups`), so the check does not refuse them. */
  readonly createsGroups?: boolean;
}

export function appIdentity(service: Service, createGroups = false): AppIdentity {
  return {
    slug: service.name,
    provider: appBlueprintName(service),
    policy: accessPolicyName(service),
    groups: [
      ...new Set([
        ...(service.auth?.groups ?? []),
        ...(service.auth?.grants ?? []).flatMap((g) => ("group" in g ? [g.group] : [])),
      ]),
    ].sort(),
    ...(createGroups ? { createsGroups: true } : {}),
  };
}

/** Every group a service's `auth` names (`groups`, `rules[].groups`, `grants[].group`), sorted, once each. */
export function namedGroups(service: Service): string[] {
  return [
    ...new Set([
      ...(service.auth?.groups ?? []),
      ...(service.auth?.rules ?? []).flatMap((r) => r.groups),
      ...(service.auth?.grants ?? []).flatMap((g) => ("group" in g ? [g.group] : [])),
    ]),
  ].sort();
}

/**
 * The access policy's expression: true exactly for members of one of `groups`, and,
 * before their instant, for the users and groups of `grants`.
 * Authentik runs it as the body of a function given `request`, with
 * `ak_is_group_member(user, **filters)` = `user.all_groups().filter(**filters).exists()`
 * (authentik/lib/expression/evaluator.py), the same membership test a group binding
 * uses. Names are written as JSON strings, which are valid Python string literals.
 *
 * A grant's end is checked against the clock at every evaluation, so it takes effect
 * without a deploy. The evaluator's globals hold no clock (evaluator.py `_globals`); the
 * body imports Python's own `datetime` (exec gives it the builtins). Access ends AT the
 * instant: `now < until`.
 */
export function accessExpression(groups: readonly string[], grants: readonly AccessGrant[] = []): string {
  const names = (list: readonly string[]) => `[${list.map((g) => JSON.stringify(g)).join(", ")}]`;
  const groupTest = `ak_is_group_member(request.user, name__in=${names(groups)})`;
  if (grants.length === 0)
    return ["# managed by edgeplane: members of any of these groups may enter, nobody else", `return ${groupTest}`, ""].join(
      "\n",
    );
  return [
    "# managed by edgeplane: members of any of these groups may enter, and each grant's users or group until its end",
    "from datetime import datetime, timezone",
    `if ${groupTest}:`,
    "    return True",
    "now = datetime.now(timezone.utc)",
    ...grants.flatMap((grant) => [
      `# grant until ${grant.until}`,
      `if now < ${pythonInstant(grant.until)} and ${
        "users" in grant
          ? `request.user.username in ${names(grant.users)}`
          : `ak_is_group_member(request.user, name=${JSON.stringify(grant.group)})`
      }:`,
      "    return True",
    ]),
    "return False",
    "",
  ].join("\n");
}

/** A normalized UTC instant (2026-12-31T18:00:00Z) as a Python aware datetime. */
function pythonInstant(until: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(until);
  if (!m) throw new Error(`internal: grant end ${JSON.stringify(until)} is not a normalized UTC instant`);
  const [y, mo, d, h, mi, sec] = m.slice(1).map(Number);
  return `datetime(${y}, ${mo}, ${d}, ${h}, ${mi}, ${sec}, tzinfo=timezone.utc)`;
}

/** The blueprint folder on the Authentik host, bind-mounted at BLUEPRINTS_IN_CONTAINER. */
export function blueprintDir(model: Model): string {
  return `${serviceHome(authentikService(model))}/blueprints/edgeplane`;
}

/** Where a protected service's blueprint is installed on the Authentik host. */
export function appBlueprintPath(model: Model, service: Service): string {
  return `${blueprintDir(model)}/${appBlueprintName(service)}.yaml`;
}

/** Where the outpost blueprint is installed on the Authentik host. */
export function outpostBlueprintPath(model: Model): string {
  return `${blueprintDir(model)}/${OUTPOST_BLUEPRINT_FILE}`;
}

/** A blueprint file's path as Authentik names it: relative to /blueprints, `edgeplane/edgeplane-grafana.yaml`. */
export function blueprintInstancePath(file: string): string {
  return `${BLUEPRINTS_RELATIVE}/${file.slice(file.lastIndexOf("/") + 1)}`;
}

/**
 * The container that runs the Authentik server: the app container of the Authentik
 * service's pod (its ContainerName in components/pod/render/units.ts).
 */
export function authentikContainer(model: Model): string {
  return `${authentikService(model).name}-app`;
}

/**
 * The proxy provider's `skip_path_regex`: always empty. Which paths skip auth is decided
 * once, by the pod's Caddy (`@public` in its Caddyfile, on the request target exactly as
 * sent), before forward_auth. An allow-list here would be a second decision, taken by the
 * outpost on its own parse of X-Forwarded-Uri (Go's url.Parse: %XX decoded, dot segments
 * and // kept, internal/outpost/proxyv2/application/mode_forward.go `forwardHandleCaddy`,
 * `IsAllowlisted`): `/hooks/../admin` or `/hooks/%2e%2e/admin` would match `^/hooks/.*$`
 * there, come back 200 without a user, and reach the app as sent. Rendered as "" rather
 * than left out, so a list set by an earlier version or by hand is cleared (the importer
 * updates partially: an attribute left out keeps its old value).
 */
export const SKIP_PATH_REGEX = "";

/**
 * The provider's `intercept_header_auth`: true only for a service with `auth.apiClients`.
 * The outpost tries an `Authorization` header whatever this says (application/auth.go
 * `checkAuth`); the setting decides whether an invalid one is answered 401 rather than
 * sent to the login flow (application/oauth.go `redirectToStart`). edgeplane's Caddy
 * decides both at the edge anyway (no Authorization reaches the outpost without
 * apiClients; a refused one becomes 401 with apiClients), so this keeps Authentik's own
 * view of the provider the same as the edge's. Rendered either way, so that turning
 * apiClients off also turns it off (the importer leaves out-of-file attributes as they are).
 */
export function interceptHeaderAuth(service: Service): boolean {
  return service.auth?.apiClients === true;
}

const flow = (slug: string) => new Find("authentik_flows.flow", "slug", slug);
const proxyProvider = (service: Service) =>
  new Find("authentik_providers_proxy.proxyprovider", "name", appBlueprintName(service));

function header(what: string): string {
  return `managed by edgeplane — ${what}; do not edit by hand`;
}

/**
 * The blueprint of one protected service: a proxy provider in forward-auth
 * single-application mode for `https://<fqdn>`, the application, one expression policy
 * that lets in the members of `auth.groups`, and one binding of that policy.
 *
 * Why one policy whose content changes, not one binding per group: Authentik's
 * importer only creates and updates what a blueprint names (`state: present`, the
 * default) and never deletes what a blueprint stops naming (authentik/blueprints/v1/
 * importer.py, `_apply_models`), so a binding removed from the file would keep its
 * group's access. The policy's `expression` is one attribute of one object found by
 * its name: taking a group out of the list updates it, in the apply's transaction.
 *
 * `policy_engine_mode: all`: every binding on the application must pass, so a binding
 * edgeplane did not write (left from an earlier version, or added by hand) can only
 * narrow access, never widen it; the apply then removes such bindings (apply.ts).
 * Authentik lets everybody in when an application has no binding at all, so the
 * binding is never left out.
 *
 * edgeplane's check before the dry run (apply.ts) fails on a group that does not
 * exist, rather than letting the policy silently match nobody. With
 * `edgeplane:authentik.createGroups`, the blueprint instead starts with one
 * `state: created` entry per group the service names: the importer creates a missing
 * group and leaves an existing one as it is, members and all (`_apply_models` in
 * authentik/blueprints/v1/importer.py skips the save when the instance exists).
 */
export function renderAppBlueprint(model: Model, service: Service, flows: AuthentikFlows = DEFAULT_FLOWS): string {
  if (!service.auth) throw new Error(`internal: service ${service.name} has no auth, so it gets no Authentik application`);
  const authentik = authentikService(model);
  if (service.name === authentik.name) throw new Error("internal: the Authentik service cannot sit behind itself");
  const url = `https://${service.fqdn}`;
  const identity = appIdentity(service);
  const groups = model.authentik?.createGroups
    ? namedGroups(service).map((name) => blueprintEntry("authentik_core.group", { state: "created", identifiers: { name } }))
    : [];
  const entries: BlueprintEntry[] = [
    blueprintEntry("authentik_providers_proxy.proxyprovider", {
      id: "provider",
      identifiers: { name: appBlueprintName(service) },
      attrs: {
        mode: "forward_single",
        external_host: url,
        authorization_flow: flow(flows.authorization),
        invalidation_flow: flow(flows.invalidation),
        skip_path_regex: SKIP_PATH_REGEX,
        intercept_header_auth: interceptHeaderAuth(service),
      },
    }),
    ...groups,
    blueprintEntry("authentik_policies_expression.expressionpolicy", {
      id: "access",
      identifiers: { name: identity.policy },
      attrs: { expression: accessExpression(service.auth.groups, service.auth.grants), execution_logging: false },
    }),
    blueprintEntry("authentik_core.application", {
      id: "application",
      identifiers: { slug: identity.slug },
      attrs: {
        name: service.name,
        provider: new KeyOf("provider"),
        meta_launch_url: url,
        policy_engine_mode: "all",
      },
    }),
    blueprintEntry("authentik_policies.policybinding", {
      identifiers: { target: new KeyOf("application"), policy: new KeyOf("access") },
      attrs: { order: 0, enabled: true, negate: false },
    }),
  ];
  return serializeBlueprint(header(`Authentik application for service ${service.name}`), {
    version: 1,
    metadata: { name: appBlueprintName(service) },
    entries,
  });
}

/**
 * What removes a protected service's objects from Authentik when it loses `auth` or is
 * removed: the same identifiers with `state: absent`, which the importer deletes
 * (`instance.delete()` in `_apply_models`). Deleting the application deletes its policy
 * bindings with it (PolicyBinding.target cascades). Applied by the delete step of the
 * service's blueprint apply (apply.ts), after edgeplane checked the application is its own.
 */
export function renderAppRemovalBlueprint(service: Service, options: { readonly keepApplication?: boolean } = {}): string {
  const identity = appIdentity(service);
  const entries: BlueprintEntry[] = [
    ...(options.keepApplication
      ? []
      : [blueprintEntry("authentik_core.application", { state: "absent", identifiers: { slug: identity.slug } })]),
    blueprintEntry("authentik_policies_expression.expressionpolicy", { state: "absent", identifiers: { name: identity.policy } }),
    blueprintEntry("authentik_providers_proxy.proxyprovider", { state: "absent", identifiers: { name: identity.provider } }),
  ];
  return serializeBlueprint(header(`removes the Authentik application of service ${service.name}`), {
    version: 1,
    metadata: { name: `${appBlueprintName(service)} removal` },
    entries,
  });
}

/**
 * The embedded outpost's blueprint. A provider list in a blueprint replaces the whole
 * list (the importer updates with `partial=True`, and a many-to-many list is set whole: authentik/blueprints/v1/importer.py), so this one blueprint names every protected service's
 * provider, plus `extraProviders` (proxy providers the operator manages outside
 * edgeplane that must stay on the outpost).
 *
 * `!Find` of a provider that does not exist yet resolves to nothing, which fails the
 * blueprint (a null in `providers`) rather than shrinking the list. edgeplane applies
 * and checks every app blueprint before this one is even installed (AuthentikOutpost),
 * so the providers exist. There are deliberately no `metaapplyblueprint` entries:
 * their serializer dispatches the other blueprint to the worker and blocks on the
 * result (authentik/blueprints/v1/meta/apply_blueprint.py), also during the
 * importer's dry run, whose transaction the worker cannot see, so validating this
 * file would wait on, or apply, other blueprints instead of only checking this one.
 */
export function renderOutpostBlueprint(model: Model, extraProviders: readonly string[] = []): string {
  const services = protectedServices(model);
  const providerNames = new Set(services.map(appBlueprintName));
  const extras = [...new Set(extraProviders)].filter((name) => !providerNames.has(name)).sort();
  const providers = [
    ...services.map((s) => ({ sortKey: appBlueprintName(s), find: proxyProvider(s) })),
    ...extras.map((name) => ({ sortKey: name, find: new Find("authentik_providers_proxy.proxyprovider", "name", name) })),
  ].sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
  const entries: BlueprintEntry[] = [
    blueprintEntry("authentik_outposts.outpost", {
      identifiers: { managed: EMBEDDED_OUTPOST },
      // Only `providers`: the outpost's name, type and config stay Authentik's.
      attrs: { providers: providers.map((p) => p.find) },
    }),
  ];
  return serializeBlueprint(header("providers of the embedded Authentik outpost"), {
    version: 1,
    metadata: { name: OUTPOST_BLUEPRINT_NAME },
    entries,
  });
}

export interface BlueprintFile {
  /** Absolute path on the Authentik host. */
  readonly path: string;
  readonly content: string;
  /** The service the file belongs to in the plan manifest. */
  readonly service: string;
}

/**
 * Every blueprint file of a stack: one per protected service, then the outpost's, with
 * the stack's flows and extra providers unless `settings` says otherwise (as the
 * AuthentikApp and AuthentikOutpost components default them).
 * None when the stack has no protected service: an empty provider list would strip
 * the embedded outpost of providers edgeplane does not know about.
 */
export function renderBlueprintFiles(
  model: Model,
  settings: { readonly flows?: AuthentikFlows; readonly extraOutpostProviders?: readonly string[] } = {},
): BlueprintFile[] {
  const services = protectedServices(model);
  if (services.length === 0) return [];
  return [
    ...services.map((service) => ({
      path: appBlueprintPath(model, service),
      content: renderAppBlueprint(model, service, settings.flows ?? model.authentik?.flows ?? DEFAULT_FLOWS),
      service: service.name,
    })),
    {
      path: outpostBlueprintPath(model),
      content: renderOutpostBlueprint(model, settings.extraOutpostProviders ?? model.authentik?.extraProviders ?? []),
      service: authentikService(model).name,
    },
  ];
}
