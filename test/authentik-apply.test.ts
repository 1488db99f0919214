/**
 * Runs the exact shell AuthentikApp/AuthentikOutpost send to the Authentik host — the
 * blueprint validator inside the install protocol, and the apply check — locally with
 * bash, a fake `sudo`, and a fake rootless `podman` whose `exec … ak shell -c CODE`
 * runs the generated Python with python3 against stand-ins for the Authentik modules
 * it imports. The stand-ins have the signatures and behaviour of the real ones
 * (Importer.from_string/validate/apply, BlueprintInstance, Tenant, capture_logs), with
 * each outcome chosen by a marker comment in the blueprint or an environment variable:
 * accepted, rejected with Authentik's message, still migrating, an apply that fails,
 * and the silent failures of LESSONS.md 13 (exit 0 with nothing said; a success the
 * database contradicts).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import {
  applyBlueprintScript,
  applyPython,
  blueprintValidator,
  RESULT_PREFIX,
  validatePython,
  type AuthentikTarget,
} from "../components/authentik/apply";
import { renderAppBlueprint } from "../components/authentik/render";
import { installScript } from "../components/remote/script";
import { fleet } from "./fixtures/models";
import { fakeBin } from "./support/fakebin";

const havePython = spawnSync("python3", ["--version"]).status === 0;
if (!havePython && process.env.CI) throw new Error("python3 is needed to run the Authentik blueprint checks in CI");

const grafana = fleet.services.find((s) => s.name === "grafana")!;
const BLUEPRINT = renderAppBlueprint(fleet, grafana);
const INSTANCE_PATH = "edgeplane/edgeplane-grafana.yaml";
const CONTAINER = "authentik-app";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const sha512 = (text: string) => createHash("sha512").update(text).digest("hex");

/** A fast target for tests: the real defaults wait minutes for a first start. */
const target = (overrides: Partial<AuthentikTarget> = {}): AuthentikTarget => ({
  user: "ep-authentik",
  container: CONTAINER,
  readyTimeoutSeconds: 20,
  pollSeconds: 0.1,
  runTimeoutSeconds: 30,
  ...overrides,
});

const root = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-authentik-apply-"));
const bin = path.join(root, "bin");
const pythonRoot = path.join(root, "python");

function write(file: string, text: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode });
}

fakeBin(bin);
write(
  path.join(bin, "podman"),
  `#!/usr/bin/env bash
# test double for the Authentik user's rootless podman: one container, FAKE_CONTAINER,
# running while $FAKE_STATE/running says true; \`exec … ak shell -c CODE\` runs CODE with
# python3 over the stand-in Authentik modules, as \`ak shell -c\` execs it with Django set up.
set -u
case "$1 \${2:-}" in
  "container inspect")
    [ "$3" = -f ] && [ "$4" = '{{.State.Running}}' ] || { echo "fake podman: unexpected: $*" >&2; exit 125; }
    [ "$5" = "$FAKE_CONTAINER" ] || { echo "Error: no such container $5" >&2; exit 125; }
    cat "$FAKE_STATE/running"
    ;;
  "exec "*)
    shift
    stdin=closed
    if [ "$1" = -i ]; then stdin=open; shift; fi
    [ "$1" = "$FAKE_CONTAINER" ] || { echo "Error: no such container $1" >&2; exit 125; }
    [ "$2 $3 $4" = "ak shell -c" ] && [ $# -eq 5 ] || { echo "fake podman: expected ak shell -c CODE, got: \${*:2}" >&2; exit 125; }
    echo "exec stdin=$stdin" >>"$FAKE_STATE/calls"
    [ "$stdin" = open ] || exec </dev/null
    # Authentik's own log lines share the stream, before and after the command's output.
    echo '{"event": "Loaded config", "level": "debug", "logger": "authentik.lib.config"}' >&2
    if [ "\${FAKE_AK:-}" = silent ]; then cat >/dev/null; exit 0; fi
    PYTHONPATH="$FAKE_PYTHONPATH" python3 -c "$5"
    status=$?
    echo '{"event": "Shutting down", "level": "info", "logger": "authentik.root"}' >&2
    exit $status
    ;;
  *) echo "fake podman: unexpected: $*" >&2; exit 125 ;;
esac
`,
  0o755,
);

/** Stand-ins for the modules the generated Python imports. */
const stubs: Record<string, string> = {
  "django/__init__.py": "",
  "django/db/__init__.py": `
class DatabaseError(Exception):
    pass


class IntegrityError(DatabaseError):
    pass
`,
  "fake_state.py": `
import json
import os
from pathlib import Path

STATE = Path(os.environ["FAKE_STATE"])


def counter(name):
    file = STATE / name
    return int(file.read_text()) if file.exists() else 0


def set_counter(name, value):
    (STATE / name).write_text(str(value))


def load():
    file = STATE / "db.json"
    return json.loads(file.read_text()) if file.exists() else {}


def store(db):
    (STATE / "db.json").write_text(json.dumps(db, indent=2, sort_keys=True))
`,
  "authentik/__init__.py": "",
  "authentik/tenants/__init__.py": "",
  "authentik/tenants/models.py": `
from django.db import DatabaseError
import fake_state


class Tenant:
    def __init__(self, schema_name):
        self.schema_name = schema_name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Manager:
    def filter(self, **kwargs):
        assert kwargs == {"ready": True}, kwargs
        # While "migrating": first the table is missing, then no tenant is ready yet.
        left = fake_state.counter("not_ready")
        if left > 0:
            fake_state.set_counter("not_ready", left - 1)
            if left % 2:
                raise DatabaseError('relation "authentik_tenants_tenant" does not exist')
            return []
        return [Tenant("public")]


Tenant.objects = _Manager()
`,
  "authentik/events/__init__.py": "",
  "authentik/events/logs.py": `
from contextlib import contextmanager
from dataclasses import dataclass, field

_capturing = []


@dataclass
class LogEvent:
    event: str
    log_level: str
    logger: str
    attributes: dict = field(default_factory=dict)


def emit(event):
    if _capturing:
        _capturing[-1].append(event)


@contextmanager
def capture_logs(log_default_output=True):
    # As the real one: the list is filled when the block ends.
    logs = []
    _capturing.append([])
    try:
        yield logs
        logs.extend(_capturing[-1])
    finally:
        _capturing.pop()
`,
  "authentik/blueprints/__init__.py": "",
  "authentik/blueprints/models.py": `
import os
from pathlib import Path

from django.db import IntegrityError
import fake_state


class BlueprintRetrievalFailed(Exception):
    pass


class BlueprintInstanceStatus:
    SUCCESSFUL = "successful"
    WARNING = "warning"
    ERROR = "error"
    ORPHANED = "orphaned"
    UNKNOWN = "unknown"


FIELDS = ("name", "path", "context", "status", "enabled", "managed_models", "metadata", "last_applied_hash")


class BlueprintInstance:
    def __init__(self, **values):
        self.last_applied_hash = ""
        for key, value in values.items():
            assert key in FIELDS, key
            setattr(self, key, value)

    def save(self):
        db = fake_state.load()
        for path, record in db.items():
            if record["name"] == self.name and path != self.path:
                raise IntegrityError("duplicate key value violates unique constraint on name")
        record = {key: getattr(self, key) for key in FIELDS}
        # A database that disagrees with what the importer reported (LESSONS.md 13).
        forced = os.environ.get("FAKE_DB_STATUS")
        if forced:
            record["status"] = forced
        db[self.path] = record
        fake_state.store(db)

    def refresh_from_db(self):
        for key, value in fake_state.load()[self.path].items():
            setattr(self, key, value)

    def retrieve(self):
        try:
            return (Path(os.environ["FAKE_BLUEPRINTS_DIR"]) / self.path).read_text(encoding="utf-8")
        except OSError as exc:
            raise BlueprintRetrievalFailed(exc) from exc


class _Query:
    def __init__(self, records):
        self.records = records

    def first(self):
        return BlueprintInstance(**self.records[0]) if self.records else None


class _Manager:
    def filter(self, **kwargs):
        assert list(kwargs) == ["path"], kwargs
        return _Query([r for p, r in sorted(fake_state.load().items()) if p == kwargs["path"]])

    def create(self, **values):
        instance = BlueprintInstance(**values)
        instance.save()
        return instance


BlueprintInstance.objects = _Manager()
`,
  "authentik/blueprints/v1/__init__.py": "",
  "authentik/blueprints/v1/importer.py": `
import re
from dataclasses import dataclass, field

from authentik.events.logs import LogEvent, emit
import fake_state


class EntryInvalidError(Exception):
    pass


@dataclass
class BlueprintMetadata:
    name: str
    labels: dict = field(default_factory=dict)


class Blueprint:
    def __init__(self, metadata):
        self.metadata = metadata


def marker(content, kind):
    found = re.search(rf"^# fake-authentik: {kind}(?: (.*))?$", content, re.M)
    return None if found is None else (found.group(1) or "")


class Importer:
    def __init__(self, content, context=None):
        self.content = content
        name = re.search(r"^metadata:\\n  name: (.*)$", content, re.M)
        self.blueprint = Blueprint(BlueprintMetadata(name.group(1)) if name else None)

    @staticmethod
    def from_string(yaml_input, context=None):
        problem = marker(yaml_input, "unparsable")
        if problem is not None:
            raise EntryInvalidError(problem)
        return Importer(yaml_input, context)

    def validate(self, raise_validation_errors=False):
        fake_state.set_counter("validations", fake_state.counter("validations") + 1)
        problem = marker(self.content, "invalid")
        if problem is not None:
            entry = {"model": "authentik_policies.policybinding", "identifiers": {"order": 0}}
            return False, [
                LogEvent("Starting blueprint import validation", "debug", "authentik.blueprints.v1.importer"),
                LogEvent(f"Entry invalid: {problem}", "warning", "authentik.blueprints.v1.importer", {"entry": entry}),
                LogEvent("Blueprint validation failed", "warning", "authentik.blueprints.v1.importer"),
            ]
        return True, [LogEvent("Finished blueprint import validation", "debug", "authentik.blueprints.v1.importer")]

    def apply(self):
        problem = marker(self.content, "apply-fails")
        if problem is not None:
            emit(LogEvent(problem, "warning", "authentik.blueprints.v1.importer"))
            return False
        fake_state.set_counter("applies", fake_state.counter("applies") + 1)
        return True
`,
};
for (const [file, text] of Object.entries(stubs)) write(path.join(pythonRoot, file), text);

interface Scene {
  /** The blueprint folder on the "host", and what the container sees as /blueprints. */
  readonly dir: string;
  readonly target: string;
  readonly blueprints: string;
  readonly state: string;
  env: Record<string, string>;
}

function scene(options: { running?: boolean; notReady?: number; mounted?: boolean } = {}): Scene {
  const base = fs.mkdtempSync(path.join(root, "scene-"));
  const blueprints = path.join(base, "blueprints");
  const dir = path.join(blueprints, "edgeplane");
  const state = path.join(base, "state");
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(state);
  fs.writeFileSync(path.join(state, "running"), options.running === false ? "false\n" : "true\n");
  if (options.notReady) fs.writeFileSync(path.join(state, "not_ready"), String(options.notReady));
  return {
    dir,
    target: path.join(dir, "edgeplane-grafana.yaml"),
    blueprints,
    state,
    env: {
      FAKE_STATE: state,
      FAKE_CONTAINER: CONTAINER,
      FAKE_PYTHONPATH: pythonRoot,
      FAKE_BLUEPRINTS_DIR: options.mounted === false ? path.join(base, "nothing-mounted") : blueprints,
    },
  };
}

function run(s: Scene, script: string, stdin = "") {
  const result = spawnSync("bash", ["-c", script], {
    input: stdin,
    encoding: "utf8",
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, HOME: root, ...s.env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const install = (s: Scene, content: string, t: AuthentikTarget = target()) =>
  run(
    s,
    installScript({
      path: s.target,
      owner: "ep-authentik",
      mode: "0644",
      description: `${s.target} on test`,
      sha256: sha256(content),
      validate: blueprintValidator(t, s.target),
    }),
    content,
  );

const apply = (s: Scene, content: string, t: AuthentikTarget = target()) =>
  run(s, applyBlueprintScript(t, { file: s.target, instancePath: INSTANCE_PATH, name: "edgeplane-grafana" }, sha256(content)));

/** Puts a file in place the way an earlier, valid `up` left it. */
function installed(s: Scene, content: string): void {
  fs.writeFileSync(s.target, content);
}

const calls = (s: Scene): string[] =>
  fs.existsSync(path.join(s.state, "calls")) ? fs.readFileSync(path.join(s.state, "calls"), "utf8").trim().split("\n") : [];
const counter = (s: Scene, name: string): number =>
  fs.existsSync(path.join(s.state, name)) ? Number(fs.readFileSync(path.join(s.state, name), "utf8")) : 0;
const db = (s: Scene): Record<string, Record<string, unknown>> =>
  fs.existsSync(path.join(s.state, "db.json")) ? JSON.parse(fs.readFileSync(path.join(s.state, "db.json"), "utf8")) : {};
const leftovers = (s: Scene): string[] => fs.readdirSync(s.dir).filter((f) => f.startsWith(".edgeplane."));
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const OLD = BLUEPRINT.replace("order: 1", "order: 7");
const REJECTED = `${BLUEPRINT}# fake-authentik: invalid Serializer errors {'non_field_errors': [ErrorDetail(string="One of 'policy', 'group' or 'user' must be set.", code='invalid')]}\n`;

describe(
  "Authentik validates a blueprint before it replaces the installed one",
  { skip: !havePython && "python3 is not installed" },
  () => {
    it("valid: the blueprint is installed (the previous kept for rollback) and then applied", () => {
      const s = scene();
      installed(s, OLD);
      const i = install(s, BLUEPRINT);
      assert.equal(i.code, 0, i.stderr);
      assert.equal(fs.readFileSync(s.target, "utf8"), BLUEPRINT);
      assert.equal(fs.readFileSync(`${s.target}.edgeplane-prev`, "utf8"), OLD);
      assert.deepEqual(calls(s), ["exec stdin=open"], "one dry run, fed the candidate on stdin");
      assert.equal(counter(s, "applies"), 0, "the dry run applies nothing");

      const a = apply(s, BLUEPRINT);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(counter(s, "applies"), 1);
      assert.deepEqual(db(s), {
        [INSTANCE_PATH]: {
          name: "edgeplane-grafana",
          path: INSTANCE_PATH,
          context: {},
          status: "successful",
          enabled: true,
          managed_models: [],
          metadata: { name: "edgeplane-grafana", labels: {} },
          last_applied_hash: sha512(BLUEPRINT),
        },
      });
      assert.deepEqual(leftovers(s), []);
    });

    it("invalid: the installed file stays, and the error names the file and carries Authentik's message", () => {
      const s = scene();
      installed(s, OLD);
      const r = install(s, REJECTED);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`edgeplane: ${escape(s.target)} failed validation; the installed file is unchanged`));
      assert.match(r.stderr, new RegExp(`edgeplane: ${escape(s.target)}: Authentik rejects it \\(tenant public\\):`));
      assert.ok(
        r.stderr.includes(
          `  warning: Entry invalid: Serializer errors {'non_field_errors': [ErrorDetail(string="One of 'policy', 'group' or 'user' must be set.", code='invalid')]} [entry authentik_policies.policybinding {'order': 0}]`,
        ),
        r.stderr,
      );
      assert.doesNotMatch(r.stderr, /Starting blueprint import validation/, "debug lines are left out when there are warnings");
      assert.equal(fs.readFileSync(s.target, "utf8"), OLD);
      assert.equal(fs.existsSync(`${s.target}.edgeplane-prev`), false);
      assert.deepEqual(leftovers(s), []);
    });

    it("a blueprint Authentik cannot even load fails with Authentik's exception", () => {
      const s = scene();
      const r = install(s, `${BLUEPRINT}# fake-authentik: unparsable missing value for field "entries"\n`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /  error: EntryInvalidError: missing value for field "entries"/);
      assert.equal(fs.existsSync(s.target), false, "a failed first install leaves no file");
    });

    it("waits while Authentik is still migrating (first install), then validates", () => {
      const s = scene({ notReady: 3 });
      const r = install(s, BLUEPRINT);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(calls(s).length, 4, "three not-ready answers, then the check");
      assert.equal(fs.readFileSync(s.target, "utf8"), BLUEPRINT);
    });

    it("fails, saying why, when the Authentik container never runs: nothing is installed unchecked", () => {
      const s = scene({ running: false });
      installed(s, OLD);
      const r = install(s, BLUEPRINT, target({ readyTimeoutSeconds: 1 }));
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        new RegExp(`edgeplane: ${escape(s.target)}: cannot reach Authentik after 1 s: container authentik-app is not running`),
      );
      assert.equal(fs.readFileSync(s.target, "utf8"), OLD);
      assert.deepEqual(calls(s), []);
    });

    it("fails when Authentik stays not ready, with its last word", () => {
      const s = scene({ notReady: 1000 });
      const r = install(s, BLUEPRINT, target({ readyTimeoutSeconds: 1 }));
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /cannot reach Authentik after 1 s: edgeplane: .*: (Authentik has no ready tenant yet|the Authentik database is not ready)/,
      );
    });

    it("an `ak` that exits 0 without confirming is a failed validation, not a pass", () => {
      const s = scene();
      installed(s, OLD);
      const r = install(s, BLUEPRINT, target());
      assert.equal(r.code, 0, r.stderr);
      const silent = { ...s, env: { ...s.env, FAKE_AK: "silent" } };
      const again = install(silent, OLD);
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, new RegExp(`${escape(s.target)}: Authentik exited 0 without confirming the result`));
      assert.equal(fs.readFileSync(s.target, "utf8"), BLUEPRINT);
    });
  },
);

describe(
  "after the install, Authentik applies the blueprint and the result is checked",
  { skip: !havePython && "python3 is not installed" },
  () => {
    it("an apply that fails fails the command with Authentik's message, and the instance says error", () => {
      const s = scene();
      const content = `${BLUEPRINT}# fake-authentik: apply-fails Flow matching query does not exist.\n`;
      installed(s, content);
      const r = apply(s, content);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        new RegExp(
          `edgeplane: ${escape(s.target)}: Authentik did not apply it \\(tenant public\\): blueprint instance status is error`,
        ),
      );
      assert.match(r.stderr, /  warning: Flow matching query does not exist\./);
      assert.equal(db(s)[INSTANCE_PATH]!.status, "error");
      assert.equal(db(s)[INSTANCE_PATH]!.last_applied_hash, "");
    });

    it("silent failure: the importer reports success but the database says error → the check fails", () => {
      const s = scene();
      installed(s, BLUEPRINT);
      const r = apply({ ...s, env: { ...s.env, FAKE_DB_STATUS: "error" } }, BLUEPRINT);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Authentik did not apply it \(tenant public\): blueprint instance status is error/);
      assert.equal(counter(s, "applies"), 1, "the importer did run and said yes");
    });

    it("silent failure: `ak` exits 0 and says nothing → the check fails", () => {
      const s = scene();
      installed(s, BLUEPRINT);
      const r = apply({ ...s, env: { ...s.env, FAKE_AK: "silent" } }, BLUEPRINT);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`${escape(s.target)}: Authentik exited 0 without confirming the result`));
    });

    it("fails when Authentik does not see the installed file (blueprint folder not mounted)", () => {
      const s = scene({ mounted: false });
      installed(s, BLUEPRINT);
      const r = apply(s, BLUEPRINT);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /Authentik does not read what edgeplane installed at \/blueprints\/edgeplane\/edgeplane-grafana\.yaml \(BlueprintRetrievalFailed: .*No such file.*\); is the blueprint folder mounted at \/blueprints\/edgeplane/,
      );
      assert.equal(counter(s, "applies"), 0);
    });

    it("fails when Authentik reads other bytes than edgeplane installed", () => {
      const s = scene();
      installed(s, OLD);
      const r = apply(s, BLUEPRINT);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /Authentik does not read what edgeplane installed at \/blueprints\/edgeplane\/edgeplane-grafana\.yaml \(other content\)/,
      );
      assert.equal(counter(s, "applies"), 0);
    });

    it("reuses the instance Authentik's discovery already created for the file", () => {
      const s = scene();
      installed(s, BLUEPRINT);
      const discovered = {
        name: "edgeplane-grafana",
        path: INSTANCE_PATH,
        context: {},
        status: "unknown",
        enabled: true,
        managed_models: [],
        metadata: {},
        last_applied_hash: "",
      };
      fs.writeFileSync(path.join(s.state, "db.json"), JSON.stringify({ [INSTANCE_PATH]: discovered }));
      const r = apply(s, BLUEPRINT);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(Object.keys(db(s)), [INSTANCE_PATH]);
      assert.equal(db(s)[INSTANCE_PATH]!.status, "successful");
    });

    it("does not apply an instance the operator disabled, and says so", () => {
      const s = scene();
      installed(s, BLUEPRINT);
      fs.writeFileSync(
        path.join(s.state, "db.json"),
        JSON.stringify({
          [INSTANCE_PATH]: { name: "edgeplane-grafana", path: INSTANCE_PATH, context: {}, status: "unknown", enabled: false },
        }),
      );
      const r = apply(s, BLUEPRINT);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /its blueprint instance 'edgeplane-grafana' is disabled in Authentik/);
      assert.equal(counter(s, "applies"), 0);
    });

    it("waits for Authentik to be ready before applying", () => {
      const s = scene({ notReady: 2 });
      installed(s, BLUEPRINT);
      const r = apply(s, BLUEPRINT);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(calls(s), ["exec stdin=closed", "exec stdin=closed", "exec stdin=closed"]);
    });
  },
);

describe("the generated commands", () => {
  const t = target();
  const ref = {
    file: "/var/lib/edgeplane/authentik/blueprints/edgeplane/edgeplane-grafana.yaml",
    instancePath: INSTANCE_PATH,
    name: "edgeplane-grafana",
  };

  it("the apply re-runs exactly when the content changes: its text names the content hash", () => {
    const a = applyBlueprintScript(t, ref, sha256(BLUEPRINT));
    assert.equal(applyBlueprintScript(t, ref, sha256(BLUEPRINT)), a);
    assert.notEqual(applyBlueprintScript(t, ref, sha256(OLD)), a);
    assert.ok(a.startsWith(`# edgeplane: apply Authentik blueprint ${ref.file} (sha256 ${sha256(BLUEPRINT)})\nset -eu\n`));
  });

  it("runs as the Authentik user, in the Authentik container, with no blueprint content or secret on a command line", () => {
    const validate = blueprintValidator(t, ref.file);
    const applyText = applyBlueprintScript(t, ref, sha256(BLUEPRINT));
    for (const text of [validate, applyText]) {
      assert.match(text, /^(# .*\nset -eu\n)?sudo -n -u 'ep-authentik' env XDG_RUNTIME_DIR=/m);
      assert.match(text, /podman exec (-i )?'\\''authentik-app'\\'' ak shell -c /);
      assert.doesNotMatch(text, /SECRET|PASSWORD|TOKEN|privateKey/i);
      assert.ok(!text.includes("edgeplane-grafana\n  "), "no blueprint text");
    }
    assert.match(validate, /edgeplane "\$candidate"$/, "the candidate goes to the check as a file, read on stdin");
  });

  it("emits Python that compiles and prints the result line last", { skip: !havePython && "python3 is not installed" }, () => {
    for (const code of [validatePython(ref.file), applyPython(ref, sha256(BLUEPRINT))]) {
      const r = spawnSync("python3", ["-c", "import ast, sys; ast.parse(sys.stdin.read())"], { input: code, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(
        code.trimEnd().split("\n").at(-1)!,
        new RegExp(`^print\\("${escape(RESULT_PREFIX)} (valid|successful)", flush=True\\)$`),
      );
    }
  });

  it("refuses a hash that is not one", () => {
    assert.throws(() => applyPython(ref, "abc"), /sha256 must be 64 hex digits/);
  });
});
