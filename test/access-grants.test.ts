/**
 * Access that expires (`auth.grants`): the expression policy edgeplane renders is taken
 * out of the rendered blueprint and run, as it is, by python3 the way Authentik runs it
 * (authentik/lib/expression/evaluator.py: the text becomes the body of
 * `def handler(request)`, executed with `ak_is_group_member` among the globals), against
 * stand-ins of `request.user`, of `ak_is_group_member` and of the clock.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { parseBlueprint } from "../components/authentik/blueprint";
import { appIdentity, renderAppBlueprint } from "../components/authentik/render";
import { buildModel, ConfigError } from "../model";
import type { Model } from "../model/types";
import { rawStackConfig } from "./fixtures/models";

function config(auth: unknown): any {
  return rawStackConfig(
    {
      grafana: { host: "edge", image: "docker.io/grafana/grafana:11.2.0", port: 3000, caddyPort: 10443, auth },
      authentik: { host: "edge", image: "ghcr.io/goauthentik/server:2025.10.1", port: 9000, caddyPort: 10400 },
    },
    { authentik: { service: "authentik" } },
  );
}

const grafana = (model: Model) => model.services.find((s) => s.name === "grafana")!;

/** The `expression` of the access policy, read back from the blueprint file edgeplane writes. */
function renderedExpression(model: Model): string {
  const blueprint = parseBlueprint(renderAppBlueprint(model, grafana(model))) as { entries: Record<string, any>[] };
  const policy = blueprint.entries.find((e) => e.model === "authentik_policies_expression.expressionpolicy");
  assert.ok(policy, "the blueprint has an expression policy");
  return policy.attrs.expression as string;
}

/**
 * Runs `expression` for each case as Authentik's evaluator does, with the clock at
 * `now` (an ISO instant with offset). `datetime.now(tz)` is the only clock Python's
 * datetime offers an expression; the stand-in returns the case's instant in `tz`.
 */
function evaluate(expression: string, cases: { user: string; groups: string[]; now: string }[]): boolean[] {
  const harness = String.raw`
import json, sys, textwrap, types, datetime as real
cases = json.loads(sys.argv[1])
expression = sys.stdin.read()
results = []
for case in cases:
    fixed = real.datetime.fromisoformat(case["now"])
    class Clock(real.datetime):
        @classmethod
        def now(cls, tz=None):
            if tz is None:
                raise AssertionError("the policy asked for a naive local time")
            return fixed.astimezone(tz)
    stand_in = types.ModuleType("datetime")
    stand_in.__dict__.update(real.__dict__)
    stand_in.datetime = Clock
    sys.modules["datetime"] = stand_in
    groups = set(case["groups"])
    class Groups:
        def __init__(self, names): self.names = names
        def filter(self, name=None, name__in=None):
            if name is not None: return Groups({g for g in self.names if g == name})
            return Groups({g for g in self.names if g in name__in})
        def exists(self): return bool(self.names)
    class User:
        username = case["user"]
        def all_groups(self): return Groups(groups)
    def ak_is_group_member(user, **filters):
        return user.all_groups().filter(**filters).exists()
    request = types.SimpleNamespace(user=User())
    code = "def handler(request):\n" + textwrap.indent(expression, "    ") + "\nresult = handler(request)"
    scope = {"request": request}
    exec(compile(code, "policy", "exec"), {"ak_is_group_member": ak_is_group_member}, scope)
    sys.modules["datetime"] = real
    results.append(scope["result"])
print(json.dumps(results))
`;
  const run = spawnSync("python3", ["-c", harness, JSON.stringify(cases)], { input: expression, encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as boolean[];
}

describe("auth.grants: access that ends without a deploy", () => {
  const model = buildModel(
    config({
      groups: ["admins"],
      grants: [
        { users: ["alice", "bob"], until: "2026-12-31T18:00:00Z" },
        { group: "contractors", until: "2027-01-15T09:30:00+01:00" },
      ],
    }),
  );
  const expression = renderedExpression(model);

  it("shows each grant's end, in UTC, in the rendered policy", () => {
    assert.match(expression, /# grant until 2026-12-31T18:00:00Z\n/);
    assert.match(expression, /# grant until 2027-01-15T08:30:00Z\n/, "a +01:00 end is written as the same instant in UTC");
  });

  it("admits a granted user before the end and refuses them at and after it", () => {
    const at = (now: string) => ({ user: "alice", groups: [], now });
    assert.deepEqual(
      evaluate(expression, [
        at("2026-12-31T17:59:59.999999+00:00"),
        at("2026-12-31T18:00:00+00:00"),
        at("2026-12-31T18:00:01+00:00"),
        at("2027-06-01T00:00:00+00:00"),
      ]),
      [true, false, false, false],
    );
  });

  it("compares instants, not wall clocks: the same moment in another timezone decides the same", () => {
    const at = (now: string) => ({ user: "bob", groups: [], now });
    assert.deepEqual(
      evaluate(expression, [
        at("2026-12-31T19:59:59+02:00"), // 17:59:59Z
        at("2026-12-31T20:00:00+02:00"), // 18:00:00Z
        at("2026-12-31T13:00:00-05:00"), // 18:00:00Z
      ]),
      [true, false, false],
    );
  });

  it("ends a group's grant at its own instant, given with an offset", () => {
    const at = (now: string) => ({ user: "carol", groups: ["contractors"], now });
    assert.deepEqual(
      evaluate(expression, [at("2027-01-15T08:29:59+00:00"), at("2027-01-15T08:30:00+00:00"), at("2027-01-15T09:30:00+01:00")]),
      [true, false, false],
    );
  });

  it("keeps a permanent group member in after their own grant expired", () => {
    const cases = [
      { user: "alice", groups: ["admins"], now: "2030-01-01T00:00:00+00:00" },
      { user: "dave", groups: ["admins", "contractors"], now: "2030-01-01T00:00:00+00:00" },
    ];
    assert.deepEqual(evaluate(expression, cases), [true, true]);
  });

  it("never admits someone the grant does not name, before or after", () => {
    const cases = [
      { user: "mallory", groups: [], now: "2026-06-01T00:00:00+00:00" },
      { user: "alice2", groups: ["contractor"], now: "2026-06-01T00:00:00+00:00" },
      { user: "Alice", groups: [], now: "2026-06-01T00:00:00+00:00" },
    ];
    assert.deepEqual(evaluate(expression, cases), [false, false, false]);
  });

  it("has edgeplane check that a granted group exists, like the service's groups", () => {
    assert.deepEqual(appIdentity(grafana(model)).groups, ["admins", "contractors"]);
  });

  it("renders the groups-only policy unchanged when there is no grant", () => {
    const plain = renderedExpression(buildModel(config({ groups: ["admins"] })));
    assert.equal(
      plain,
      '# managed by edgeplane: members of any of these groups may enter, nobody else\nreturn ak_is_group_member(request.user, name__in=["admins"])\n',
    );
    assert.deepEqual(evaluate(plain, [{ user: "x", groups: ["admins"], now: "2026-01-01T00:00:00+00:00" }]), [true]);
  });
});

describe("auth.grants: config errors name the key", () => {
  const problems = (grants: unknown): readonly string[] => {
    try {
      buildModel(config({ groups: ["admins"], grants }));
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.problems;
    }
    return [];
  };
  const at = "edgeplane:services.grafana.auth.grants[0]";
  const noZone = "must be a date and time with a timezone, such as 2026-12-31T18:00:00Z or 2026-12-31T19:00:00+01:00";

  it("refuses a time without a timezone, a date alone and an impossible date", () => {
    assert.deepEqual(problems([{ users: ["a"], until: "2026-12-31T18:00:00" }]), [
      `${at}.until: ${noZone} (got "2026-12-31T18:00:00")`,
    ]);
    assert.deepEqual(problems([{ users: ["a"], until: "2026-12-31" }]), [`${at}.until: ${noZone} (got "2026-12-31")`]);
    assert.deepEqual(problems([{ users: ["a"], until: "2026-02-30T10:00:00Z" }]), [
      `${at}.until: is not a real date and time (${noZone})`,
    ]);
  });

  it("refuses names that would end the policy's Python string", () => {
    const bad =
      "must not contain a quote, a backslash or a control character (it is written into Authentik's policy as a Python string)";
    assert.deepEqual(problems([{ users: ['x"]) or True or ("'], until: "2026-12-31T18:00:00Z" }]), [`${at}.users[0]: ${bad}`]);
    assert.deepEqual(problems([{ group: "a\\", until: "2026-12-31T18:00:00Z" }]), [`${at}.group: ${bad}`]);
    assert.deepEqual(problems([{ users: ["ok", "new\nline"], until: "2026-12-31T18:00:00Z" }]), [`${at}.users[1]: ${bad}`]);
  });

  it("reads an unquoted YAML date the way Pulumi hands it over (Go's time format)", () => {
    const model = buildModel(
      config({
        groups: ["admins"],
        grants: [
          { users: ["a"], until: "2027-06-30 23:59:59 +0200 +0200" },
          { group: "g", until: "2027-03-31 18:00:00 +0000 UTC" },
        ],
      }),
    );
    assert.deepEqual(
      grafana(model).auth?.grants?.map((g) => g.until),
      ["2027-06-30T21:59:59Z", "2027-03-31T18:00:00Z"],
    );
  });

  it("needs users or a group, not both", () => {
    const msg = `${at}: must name either users or a group (one of them, not both)`;
    assert.deepEqual(problems([{ until: "2026-12-31T18:00:00Z" }]), [msg]);
    assert.deepEqual(problems([{ users: ["a"], group: "g", until: "2026-12-31T18:00:00Z" }]), [msg]);
  });
});
