/**
 * marshalUnit (components/render/unit.ts) and the rootful Envoy Quadlet unit.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderEnvoyContainerUnit } from "../../components/ingress/renderUnit";
import { entry, marshalUnit, section, words } from "../../components/render/unit";
import { fixtures } from "../fixtures/models";
import { assertGolden, pruneGolden } from "../golden";
import { sectionLines } from "../support/units";

describe("marshalUnit", () => {
  const one = (name: string, value: Parameters<typeof entry>[1]) =>
    marshalUnit({ origin: "test", sections: [section(name, entry("Key", value))] });

  it("writes the origin header, sections in order and repeated keys", () => {
    const text = marshalUnit({
      origin: "service demo",
      sections: [
        section("Unit", entry("Description", "demo")),
        section("Container", entry("Volume", "a:/a"), entry("Volume", "b:/b", ["why b"])),
      ],
    });
    assert.equal(
      text,
      [
        "# managed by edgeplane — service demo; do not edit by hand",
        "",
        "[Unit]",
        "Description=demo",
        "",
        "[Container]",
        "Volume=a:/a",
        "# why b",
        "Volume=b:/b",
        "",
      ].join("\n"),
    );
  });

  it("rejects values with a newline, NUL or other control character", () => {
    assert.throws(() => one("Service", "a\nb"), /newline, NUL or other control character/);
    assert.throws(() => one("Service", "a\0b"), /newline, NUL or other control character/);
    assert.throws(() => one("Service", words("ok", "x\ny")), /newline, NUL or other control character/);
    assert.throws(() => marshalUnit({ origin: "x\ny", sections: [] }), /control character/);
  });

  it("rejects plain values systemd would read differently", () => {
    assert.throws(() => one("Service", ""), /empty assignment would reset/);
    assert.throws(() => one("Service", " padded"), /whitespace/);
    assert.throws(() => one("Service", "continued\\"), /line continuation/);
    assert.throws(() => marshalUnit({ origin: "t", sections: [section("Bad Name")] }), /section name/);
    assert.throws(() => marshalUnit({ origin: "t", sections: [section("Unit", entry("Bad=Key", "v"))] }), /invalid key/);
  });

  it("doubles % everywhere and $ where the value reaches a command line", () => {
    assert.equal(sectionLines(one("Unit", "50% $HOME"), "Unit")[0], "Key=50%% $HOME");
    assert.equal(sectionLines(one("Container", "50% $HOME"), "Container")[0], "Key=50%% $$HOME");
    assert.equal(
      sectionLines(marshalUnit({ origin: "t", sections: [section("Service", entry("ExecStartPre", "echo $X"))] }), "Service")[0],
      "ExecStartPre=echo $$X",
    );
  });

  it("quotes words that need it, with C-style escapes", () => {
    const text = one("Container", words("A=plain", "B=two words", 'C=say "hi"', "D=back\\slash", "", "E='q'"));
    assert.equal(sectionLines(text, "Container")[0], 'Key=A=plain "B=two words" "C=say \\"hi\\"" "D=back\\\\slash" "" "E=\'q\'"');
  });
});

describe("renderEnvoyContainerUnit", () => {
  it("matches the golden files", () => {
    const written: string[] = [];
    for (const [fixture, model] of Object.entries(fixtures)) {
      const rel = `units/${fixture}/envoy.container`;
      assertGolden(rel, renderEnvoyContainerUnit(model));
      written.push(rel);
    }
    pruneGolden("units", written);
  });

  for (const [fixture, model] of Object.entries(fixtures)) {
    it(`${fixture}: runs the pinned image on the host network, config read-only, started as envoy with only CAP_NET_BIND_SERVICE`, () => {
      const container = sectionLines(renderEnvoyContainerUnit(model), "Container");
      assert.ok(container.includes(`Image=${model.images.envoy}`));
      assert.ok(container.includes("Network=host"));
      assert.ok(container.includes("Volume=/etc/envoy:/etc/envoy:ro,Z"));
      assert.ok(container.includes("Exec=envoy -c /etc/envoy/envoy.yaml"));
      assert.ok(container.includes("User=envoy"));
      assert.deepEqual(
        container.filter((l) => /^(Add|Drop)Capability=/.test(l)),
        ["DropCapability=all", "AddCapability=CAP_NET_BIND_SERVICE"],
      );
      assert.ok(!container.some((l) => l.startsWith("PublishPort=")), "host networking publishes nothing");
      const text = renderEnvoyContainerUnit(model);
      assert.deepEqual(sectionLines(text, "Install"), ["WantedBy=multi-user.target"]);
      assert.ok(sectionLines(text, "Service").includes("Restart=always"));
    });
  }
});
