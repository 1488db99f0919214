/**
 * How a blueprint reaches Authentik, as shell text (pure builders: no Pulumi, no I/O).
 * Two commands, both run by Authentik's own Python inside the running Authentik
 * container, never by a re-implementation of its checks:
 *
 * 1. `validate` (the RemoteFile validator): Authentik's importer dry run over the
 *    candidate file, before it replaces the installed one. `Importer.validate()`
 *    (authentik/blueprints/v1/importer.py) applies every entry inside
 *    `transaction_rollback()` and rolls back, so it sees what an apply would see
 *    (missing flows and groups, serializer errors) and changes nothing. This is the
 *    check `ak apply_blueprint` runs first (authentik/blueprints/management/commands/
 *    apply_blueprint.py); it is called directly because that command's `--dry-run`
 *    flag is not in every release edgeplane may run against.
 *
 * 2. `apply`: after the install, apply the installed file the way Authentik's own
 *    `apply_blueprint` task does (authentik/blueprints/v1/tasks.py): find or create the
 *    BlueprintInstance for the path (as discovery would), validate, `Importer.apply()`,
 *    record `status` and `last_applied_hash`, then read the status back from the
 *    database. Not `ak apply_blueprint <path>`: it ignores `importer.apply()`'s result
 *    and exits 0 when the apply fails, and records no instance status
 *    (a blueprint that fails must not look like success: goauthentik/authentik#9431, #12186).
 *
 * Why edgeplane applies at all, instead of leaving it to Authentik's watcher: the
 * install renames the file into place, and the worker's watcher only reacts to
 * created and modified files (`event_filter=(FileCreatedEvent, FileModifiedEvent)` in
 * authentik/blueprints/v1/tasks.py), so a renamed-in blueprint would wait for the
 * hourly discovery, and its failure would be seen by nobody.
 *
 * Both run as the Authentik service user (rootless podman) via `podman exec` into the
 * app container, whose image runs as its `authentik` user and has `ak` on PATH
 * (lifecycle/container/Dockerfile: USER 1000, PATH=/lifecycle:…). `ak shell -c CODE`
 * is `python -m manage shell -c CODE` (lifecycle/ak), which execs CODE with Django
 * set up (authentik/core/management/commands/shell.py). The exec inherits the
 * container's environment, so Authentik's database settings and secret key never
 * appear on a command line. The code itself carries only paths, names and a
 * content hash.
 *
 * Neither trusts an exit status alone: success is exit 0 *and* the last line the
 * code prints, `edgeplane-blueprint-result: valid|successful`, which it prints only
 * after the check passed (for the apply: after reading the instance's status back).
 */
import { asServiceUser, shQuote } from "../remote/script";
import type { AppIdentity } from "./render";

/** The line the Python prints last when the blueprint passed; anything else is a failure. */
export const RESULT_PREFIX = "edgeplane-blueprint-result:";

/** Exit status the Python uses for "Authentik is not ready yet; try again" (EX_TEMPFAIL). */
export const NOT_READY = 75;

export interface AuthentikTarget {
  /** Linux user that runs the Authentik pod (rootless podman). */
  readonly user: string;
  /** The Authentik server container (`<service>-app`). */
  readonly container: string;
  /** How long to wait for the container to run and Authentik to finish migrating, in seconds. */
  readonly readyTimeoutSeconds?: number;
  /** Pause between readiness checks, in seconds. */
  readonly pollSeconds?: number;
  /** Upper bound of one `ak shell` run, in seconds. */
  readonly runTimeoutSeconds?: number;
}

export interface BlueprintRef {
  /** Absolute path of the installed file on the host (for messages). */
  readonly file: string;
  /** The same file relative to Authentik's blueprints_dir (/blueprints): how Authentik names an instance's path. */
  readonly instancePath: string;
  /** The blueprint's `metadata.name`: the name Authentik's discovery gives its instance. */
  readonly name: string;
  /** For a protected service's blueprint: the objects it owns in Authentik (checked, cleaned up, removed). */
  readonly app?: AppIdentity;
}

/** Defaults: a first start migrates the database before `ak` can answer, which takes minutes. */
const READY_TIMEOUT = 600;
const POLL = 5;
const RUN_TIMEOUT = 300;

/** A Python string literal (JSON's string syntax is a subset of Python's). */
function py(value: string): string {
  return JSON.stringify(value);
}

/**
 * Helpers shared by both snippets. Messages go to stderr, prefixed with the file, so
 * `pulumi up` names it; the importer's own log lines are printed as Authentik wrote them.
 */
function prelude(file: string): string {
  return `import sys

from django.db import DatabaseError

from authentik.tenants.models import Tenant

FILE = ${py(file)}


def fail(message, status=1):
    print(f"edgeplane: {FILE}: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def ready_tenants():
    # Tenants whose schema is migrated, as apply_blueprint iterates them. A database
    # error or no ready tenant means Authentik is still starting: the caller retries.
    try:
        tenants = list(Tenant.objects.filter(ready=True))
    except DatabaseError as exc:
        fail(f"the Authentik database is not ready: {exc}", ${NOT_READY})
    if not tenants:
        fail("Authentik has no ready tenant yet (first start still migrating?)", ${NOT_READY})
    return tenants


def entry_of(attributes):
    entry = attributes.get("entry") if isinstance(attributes, dict) else None
    if not isinstance(entry, dict) or not entry.get("model"):
        return ""
    model, identifiers = entry.get("model"), entry.get("identifiers", {})
    return f" [entry {model} {identifiers}]"


def authentik_says(logs):
    # What the importer logged: LogEvent (authentik/events/logs.py), or a dict or a
    # string in older releases. Warnings and errors when there are any, else all.
    lines = []
    for log in logs:
        if isinstance(log, str):
            lines.append(("error", log))
        elif isinstance(log, dict):
            lines.append((str(log.get("log_level", log.get("level", "warning"))), str(log.get("event", log)) + entry_of(log)))
        else:
            lines.append((str(log.log_level), str(log.event) + entry_of(log.attributes)))
    serious = [line for line in lines if line[0].lower() in ("warning", "error", "critical", "exception")]
    return [f"  {level}: {event}" for level, event in (serious or lines)] or ["  (Authentik logged nothing)"]
`;
}

/**
 * edgeplane's own checks of a protected service's application, run before the importer
 * in both the dry run and the apply:
 *
 * - no takeover: an application with the service's slug whose provider is not
 *   `edgeplane-<service>` was not created by edgeplane. The importer would update it
 *   in place (identifiers find it; `partial=True`) and keep its policy bindings, and
 *   `state: must_created` does not prevent that: in `_validate_single`
 *   (authentik/blueprints/v1/importer.py) its check sits in an `elif` after the branch
 *   that takes any existing instance of an ordinary model;
 * - every group exists: the access policy names groups, and a missing one would match
 *   nobody without a word. Not checked when the blueprint creates its missing groups
 *   (`edgeplane:authentik.createGroups`): the importer creates them in the same apply.
 *
 * `remove_foreign_bindings` runs after the import, in its transaction: every binding on
 * the application but the access policy's goes (an earlier edgeplane's per-group
 * bindings, or one added by hand), so exactly the configured groups get in.
 */
function appPython(app: AppIdentity | undefined): string {
  if (!app)
    return `APP = None


def check_application():
    pass
`;
  return `from authentik.core.models import Application, Group
from authentik.policies.models import PolicyBinding

APP = ${py(app.slug)}
APP_PROVIDER = ${py(app.provider)}
APP_POLICY = ${py(app.policy)}
# The groups that must exist before the import: none when the blueprint creates them.
GROUPS_MUST_EXIST = [${(app.createsGroups ? [] : app.groups).map(py).join(", ")}]


def check_application():
    app = Application.objects.filter(slug=APP).first()
    if app is not None and (app.provider is None or app.provider.name != APP_PROVIDER):
        owner = "no provider" if app.provider is None else f"provider {app.provider.name!r}"
        fail(
            f"Authentik already has an application with slug {APP!r} ({owner}) that edgeplane did not create; "
            "edgeplane does not take it over with its policy bindings: delete or rename it in Authentik, or rename the service"
        )
    missing = [name for name in GROUPS_MUST_EXIST if not Group.objects.filter(name=name).exists()]
    if missing:
        fail(f"auth.groups names groups that do not exist in Authentik: {', '.join(missing)}; create them first")


def remove_foreign_bindings():
    app = Application.objects.filter(slug=APP).first()
    stale = PolicyBinding.objects.filter(target=app).exclude(policy__name=APP_POLICY)
    count = stale.count()
    if count:
        stale.delete()
        print(f"edgeplane: {FILE}: removed {count} policy binding(s) edgeplane did not write from application {APP!r}", file=sys.stderr, flush=True)
`;
}

/**
 * The dry run: Importer.from_string + validate() per ready tenant, over the blueprint
 * text on stdin. A parse error (bad YAML, wrong structure) raises rather than logs, so
 * it is caught and shown as Authentik's message too.
 */
export function validatePython(file: string, app?: AppIdentity): string {
  return `${prelude(file)}
from authentik.blueprints.v1.importer import Importer

${appPython(app)}

content = sys.stdin.read()
problems = []
for tenant in ready_tenants():
    with tenant:
        check_application()
        try:
            valid, logs = Importer.from_string(content).validate()
        except Exception as exc:
            valid, logs = False, [f"{type(exc).__name__}: {exc}"]
    if not valid:
        problems.append(f"Authentik rejects it (tenant {tenant.schema_name}):")
        problems.extend(authentik_says(logs))
if problems:
    fail("\\n".join(problems))
print("${RESULT_PREFIX} valid", flush=True)
`;
}

/**
 * The apply, as authentik/blueprints/v1/tasks.py apply_blueprint does it, for the
 * installed file, then the check: the instance's status as stored. It first checks
 * that Authentik reads the bytes edgeplane installed (a missing bind mount would
 * otherwise apply whatever is, or is not, at that path in the container).
 */
export function applyPython(ref: BlueprintRef, sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`sha256 must be 64 hex digits: ${sha256}`);
  return `${prelude(ref.file)}
from dataclasses import asdict
from hashlib import sha256, sha512

from django.db import IntegrityError
from django.db.transaction import atomic

from authentik.blueprints.models import BlueprintInstance, BlueprintInstanceStatus
from authentik.blueprints.v1.importer import Importer
from authentik.events.logs import capture_logs

PATH = ${py(ref.instancePath)}
NAME = ${py(ref.name)}
SHA256 = ${py(sha256)}

${appPython(ref.app)}


def instance_for_path():
    instance = BlueprintInstance.objects.filter(path=PATH).first()
    if instance is not None:
        return instance
    try:
        # What discovery (check_blueprint_v1_file) creates for a new file.
        return BlueprintInstance.objects.create(
            name=NAME,
            path=PATH,
            context={},
            status=BlueprintInstanceStatus.UNKNOWN,
            enabled=True,
            managed_models=[],
            metadata={},
        )
    except IntegrityError:
        # Discovery created it meanwhile, or another instance already has the name.
        instance = BlueprintInstance.objects.filter(path=PATH).first()
        if instance is None:
            fail(f"another blueprint instance is already named {NAME!r}; rename or delete it in Authentik")
        return instance


def apply_here():
    check_application()
    instance = instance_for_path()
    if not instance.enabled:
        fail(f"its blueprint instance {instance.name!r} is disabled in Authentik; enable it to apply the file")
    try:
        content = instance.retrieve()
    except Exception as exc:
        content, retrieval = None, f"{type(exc).__name__}: {exc}"
    if content is None or sha256(content.encode()).hexdigest() != SHA256:
        seen = retrieval if content is None else "other content"
        fail(
            f"Authentik does not read what edgeplane installed at /blueprints/{PATH} ({seen}); "
            "is the blueprint folder mounted at /blueprints/edgeplane in the Authentik container?"
        )
    logs = []
    applied = False
    try:
        importer = Importer.from_string(content, instance.context)
        if importer.blueprint.metadata:
            instance.metadata = asdict(importer.blueprint.metadata)
        valid, logs = importer.validate()
        if valid:
            with capture_logs() as logs, atomic():
                applied = importer.apply()
                if applied and APP is not None:
                    remove_foreign_bindings()
    except Exception as exc:
        logs = list(logs) + [f"{type(exc).__name__}: {exc}"]
    instance.status = BlueprintInstanceStatus.SUCCESSFUL if applied else BlueprintInstanceStatus.ERROR
    if applied:
        instance.last_applied_hash = sha512(content.encode()).hexdigest()
    instance.save()
    # Believe the database, not a return value (goauthentik/authentik#12186).
    instance.refresh_from_db()
    return str(instance.status), logs


problems = []
for tenant in ready_tenants():
    with tenant:
        status, logs = apply_here()
    if status != BlueprintInstanceStatus.SUCCESSFUL:
        problems.append(f"Authentik did not apply it (tenant {tenant.schema_name}): blueprint instance status is {status}")
        problems.extend(authentik_says(logs))
if problems:
    fail("\\n".join(problems))
print("${RESULT_PREFIX} successful", flush=True)
`;
}

/**
 * The removal of a protected service's objects, when it loses `auth` or is removed:
 * Authentik's importer applies `removal` (the same identifiers with `state: absent`,
 * render.ts renderAppRemovalBlueprint), or `removalKeepingApp` when the application
 * with the slug is not edgeplane's (another provider): edgeplane deletes only what it
 * created. Then the file's blueprint instance is deleted, since the file is gone.
 */
export function removePython(ref: BlueprintRef, removal: string, removalKeepingApp: string): string {
  if (!ref.app) throw new Error(`internal: ${ref.file} is not an application blueprint`);
  return `${prelude(ref.file)}
from authentik.blueprints.models import BlueprintInstance
from authentik.blueprints.v1.importer import Importer
from authentik.events.logs import capture_logs

${appPython(ref.app)}
PATH = ${py(ref.instancePath)}
REMOVAL = ${py(removal)}
REMOVAL_KEEPING_APP = ${py(removalKeepingApp)}


def remove_here():
    app = Application.objects.filter(slug=APP).first()
    ours = app is None or (app.provider is not None and app.provider.name == APP_PROVIDER)
    if not ours:
        print(f"edgeplane: {FILE}: application {APP!r} is not edgeplane's (another provider); it is kept", file=sys.stderr, flush=True)
    applied = False
    try:
        importer = Importer.from_string(REMOVAL if ours else REMOVAL_KEEPING_APP)
        valid, logs = importer.validate()
        if valid:
            with capture_logs() as logs:
                applied = importer.apply()
    except Exception as exc:
        logs = [f"{type(exc).__name__}: {exc}"]
    if applied:
        BlueprintInstance.objects.filter(path=PATH).delete()
    return applied, logs


problems = []
for tenant in ready_tenants():
    with tenant:
        applied, logs = remove_here()
    if not applied:
        problems.append(f"Authentik did not remove application {APP!r} (tenant {tenant.schema_name}):")
        problems.extend(authentik_says(logs))
if problems:
    fail("\\n".join(problems))
print("${RESULT_PREFIX} removed", flush=True)
`;
}

/**
 * Shell, run as the Authentik user, that runs `code` with `ak shell -c` in the
 * container once Authentik is ready, and succeeds only on exit 0 plus the expected
 * result line. `stdin` is a shell word to redirect from (the candidate file), or none.
 * Waiting covers the first install, when the Authentik pod was started moments ago
 * and is still migrating; when it never becomes ready the check fails, saying so,
 * rather than passing unchecked.
 */
function akShellCheck(target: AuthentikTarget, file: string, code: string, expect: string, stdin?: string): string {
  const ready = target.readyTimeoutSeconds ?? READY_TIMEOUT;
  const poll = target.pollSeconds ?? POLL;
  const run = target.runTimeoutSeconds ?? RUN_TIMEOUT;
  const container = shQuote(target.container);
  const exec = `timeout ${run} podman exec${stdin ? " -i" : ""} ${container} ak shell -c ${shQuote(code)} <${stdin ?? "/dev/null"}`;
  const f = shQuote(file);
  return [
    `deadline=$(( $(date +%s) + ${ready} ))`,
    `while :; do`,
    `  if [ "$(podman container inspect -f '{{.State.Running}}' ${container} 2>/dev/null)" = true ]; then`,
    `    status=0`,
    `    output=$(${exec} 2>&1) || status=$?`,
    `    [ "$status" -eq ${NOT_READY} ] || break`,
    `    waiting=$(printf '%s\\n' "$output" | grep '^edgeplane: ' | tail -n 1)`,
    `  else`,
    `    waiting=${shQuote(`container ${target.container} is not running`)}`,
    `  fi`,
    `  if [ "$(date +%s)" -ge "$deadline" ]; then`,
    `    printf 'edgeplane: %s: cannot reach Authentik after ${ready} s: %s\\n' ${f} "$waiting" >&2`,
    `    exit 1`,
    `  fi`,
    `  sleep ${poll}`,
    `done`,
    // Anywhere in the output, not last: Authentik's own log lines (JSON) share the stream.
    `if [ "$status" -eq 0 ] && printf '%s\\n' "$output" | grep -qxF ${shQuote(expect)}; then`,
    // What edgeplane's own code reported on the way (bindings removed, an application kept).
    `  printf '%s\\n' "$output" | grep '^edgeplane: ' >&2 || true`,
    `  exit 0`,
    `fi`,
    `printf '%s\\n' "$output" >&2`,
    `case "$status" in`,
    `  0) printf 'edgeplane: %s: Authentik exited 0 without confirming the result; treated as a failure\\n' ${f} >&2 ;;`,
    `  124) printf 'edgeplane: %s: Authentik did not finish within ${run} s\\n' ${f} >&2 ;;`,
    `esac`,
    `exit 1`,
  ].join("\n");
}

/**
 * The RemoteFile validator for a blueprint: Authentik's dry run over "$candidate",
 * which the Authentik user reads (the install script made it theirs) and hands to the
 * container on stdin, so no path needs to map into the container for the check.
 */
export function blueprintValidator(target: AuthentikTarget, file: string, app?: AppIdentity): string {
  const check = akShellCheck(target, file, validatePython(file, app), `${RESULT_PREFIX} valid`, '"$1"');
  return asServiceUser(target.user, check, ['"$candidate"']);
}

/**
 * The remote command that applies an installed blueprint and fails unless Authentik
 * recorded it as applied. Its text names the content hash, so it changes (and the
 * command re-runs, as an update) exactly when the file's content does.
 */
export function applyBlueprintScript(target: AuthentikTarget, ref: BlueprintRef, sha256: string): string {
  const check = akShellCheck(target, ref.file, applyPython(ref, sha256), `${RESULT_PREFIX} successful`);
  return [
    `# edgeplane: apply Authentik blueprint ${ref.file} (sha256 ${sha256})`,
    "set -eu",
    asServiceUser(target.user, check),
    "",
  ].join("\n");
}

/**
 * The delete step of an application blueprint's apply: removes the application, its
 * provider and access policy from Authentik (removePython), and fails unless Authentik
 * confirmed it. Runs when the service loses `auth` or is removed.
 */
export function removeAppScript(target: AuthentikTarget, ref: BlueprintRef, removal: string, removalKeepingApp: string): string {
  const check = akShellCheck(target, ref.file, removePython(ref, removal, removalKeepingApp), `${RESULT_PREFIX} removed`);
  return [`# edgeplane: remove the Authentik application of ${ref.file}`, "set -eu", asServiceUser(target.user, check), ""].join(
    "\n",
  );
}
