/**
 * The pod renderers (components/pod/render.ts) and the Caddyfile marshaller: golden
 * files for every fixture × service × file, plus the properties that matter.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { l7CredentialSecretName } from "../../components/pod/render";
import { describe, it } from "node:test";
import {
  AUTHENTIK_HEADERS,
  cloudflareTokenSecretName,
  podmanSecretName,
  renderCaddyfile,
  renderPodFiles,
  type PodFile,
} from "../../components/pod/render";
import {
  CLIENT_CLAIM_HEADERS,
  CONNECTION_UPGRADE_ONLY,
  SECRET_HEADERS,
  secretParameterRegexp,
} from "../../components/pod/render/caddyfile";
import { directive, formatToken, marshalCaddyfile, placeholder } from "../../components/render/caddyfile";
import { serviceHome } from "../../model/topology";
import type { Model, Service } from "../../model/types";
import { fixtures, fleet, single } from "../fixtures/models";
import { assertGolden, pruneGolden } from "../golden";
import { sectionLines } from "../support/units";

/** The fixtures plus an offline variant that uses Caddy's local CA. */
const models: Record<string, Model> = { ...fixtures, "single-internal": { ...single, tls: { issuer: "internal" } } };

const SENTINEL_TOKEN = "abcdefghijklmnopqrstuvwxyz0123456789SENTINEL";

function service(model: Model, name: string): Service {
  const svc = model.services.find((s) => s.name === name);
  assert.ok(svc, `fixture has service ${name}`);
  return svc;
}

function fileNamed(files: readonly PodFile[], basename: string): PodFile {
  const file = files.find((f) => path.posix.basename(f.path) === basename);
  assert.ok(file, `pod files include ${basename}`);
  return file;
}

/** Non-comment Caddyfile lines with indentation removed. */
function caddyLines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

/** Every (fixture, model, service) case. */
const cases = Object.entries(models).flatMap(([fixture, model]) => model.services.map((svc) => ({ fixture, model, svc })));

describe("pod renderers: golden files", () => {
  it("match for every fixture × service × file", () => {
    const written: string[] = [];
    for (const { fixture, model, svc } of cases) {
      for (const file of renderPodFiles(model, svc)) {
        const rel = `pod/${fixture}/${svc.name}/${path.posix.basename(file.path)}`;
        assertGolden(rel, file.content);
        written.push(rel);
      }
    }
    pruneGolden("pod", written);
  });

  it("are deterministic", () => {
    for (const { model, svc } of cases) assert.deepEqual(renderPodFiles(model, svc), renderPodFiles(model, svc));
  });
});

describe("renderPodFiles", () => {
  it("lists the Caddyfile and the four Quadlet files at absolute paths, sorted by path", () => {
    const svc = service(fleet, "grafana");
    const files = renderPodFiles(fleet, svc);
    const home = serviceHome(svc);
    assert.deepEqual(
      files.map((f) => f.path),
      [
        `${home}/.config/containers/systemd/grafana-app.container`,
        `${home}/.config/containers/systemd/grafana-caddy-data.volume`,
        `${home}/.config/containers/systemd/grafana-caddy.container`,
        `${home}/.config/containers/systemd/grafana.pod`,
        `${home}/caddy/Caddyfile`,
      ],
    );
    for (const f of files) assert.equal(f.mode, "0644");
  });

  it("names podman secrets after the service and the variable", () => {
    const svc = service(fleet, "grafana");
    assert.equal(podmanSecretName(svc, "GF_SECURITY_SECRET_KEY"), "grafana-gf-security-secret-key");
    assert.equal(cloudflareTokenSecretName(svc), "grafana-cf-api-token");
  });
});

describe("pod renderers: what matters", () => {
  for (const { fixture, model, svc } of cases) {
    const files = renderPodFiles(model, svc);
    const label = `${fixture}/${svc.name}`;

    it(`${label}: the app port is never published; the pod publishes Caddy's port on the address Envoy reaches, and its metrics on the tailnet only`, () => {
      for (const f of files.filter((f) => f.path.endsWith(".container"))) {
        assert.ok(!/^PublishPort=/m.test(f.content), `${f.path} publishes nothing`);
      }
      const host = model.hosts.find((h) => h.name === svc.host);
      assert.ok(host);
      // The host's tailnet address even on the ingress host: pasta would present a loopback
      // connection from an address no allow list can know.
      const bind = host.tailnetIP;
      const pod = sectionLines(fileNamed(files, `${svc.name}.pod`).content, "Pod");
      assert.deepEqual(
        pod.filter((l) => l.startsWith("PublishPort=")),
        [`PublishPort=${bind}:${svc.caddyPort}:443`, `PublishPort=${host.tailnetIP}:${svc.metricsPort}:${svc.metricsPort}`],
      );
      // The metrics port inside the pod is Caddy's plain-HTTP metrics site, and only that.
      const caddyfile = fileNamed(files, "Caddyfile").content;
      assert.ok(caddyfile.includes(`\nhttp://:${svc.metricsPort} {\n\tmetrics /metrics\n}\n`), "metrics site");
      assert.notEqual(svc.metricsPort, svc.port);
      assert.ok(pod.includes("Network=pasta"));
    });

    it(`${label}: PROXY protocol is believed only from Envoy's source address`, () => {
      const ingress = model.hosts.find((h) => h.ingress);
      assert.ok(ingress);
      const envoySource = ingress.tailnetIP;
      const lines = caddyLines(fileNamed(files, "Caddyfile").content);
      const start = lines.indexOf("proxy_protocol {");
      assert.ok(start >= 0, "has a proxy_protocol listener wrapper");
      const end = lines.indexOf("}", start);
      const block = lines.slice(start + 1, end);
      assert.deepEqual(
        block.filter((l) => l.startsWith("allow ")),
        [`allow ${envoySource}/32`],
      );
      assert.ok(block.includes("fallback_policy reject"));
      assert.equal(lines[end + 1], "tls", "the tls wrapper comes after proxy_protocol");
    });

    it(`${label}: what only a proxy may claim is stripped before any auth or proxying`, () => {
      const lines = caddyLines(fileNamed(files, "Caddyfile").content);
      const strips = [
        `request_header Connection ${CONNECTION_UPGRADE_ONLY.map((t) => formatToken(t)).join(" ")}`,
        ...CLIENT_CLAIM_HEADERS.map((h) => `request_header -${h}`),
      ].map((line) => {
        const i = lines.indexOf(line);
        assert.ok(i >= 0, `has ${line}`);
        return i;
      });
      const firstHandler = lines.findIndex((l) => /^(forward_auth|reverse_proxy|respond)\b/.test(l));
      assert.ok(firstHandler > Math.max(...strips), "strip comes first");
      assert.ok(lines.slice(0, Math.min(...strips)).includes("route {"), "inside a route, so the written order is the run order");
      // Authentik's own site keeps the X-Forwarded-* its callers' forward_auth wrote
      // (trusted_proxies decides); every other site drops the client's.
      const stripXForwarded = lines.indexOf("request_header -X-Forwarded-*");
      if (model.authentik?.service === svc.name) assert.equal(stripXForwarded, -1);
      else assert.ok(stripXForwarded > Math.max(...strips) && stripXForwarded < firstHandler);
    });

    it(`${label}: TLS issuer and the Cloudflare token secret agree`, () => {
      const lines = caddyLines(fileNamed(files, "Caddyfile").content);
      const caddy = sectionLines(fileNamed(files, `${svc.name}-caddy.container`).content, "Container");
      const tokenSecret = `Secret=${cloudflareTokenSecretName(svc)},type=env,target=CF_API_TOKEN`;
      if (model.tls.issuer === "internal") {
        assert.ok(lines.includes("tls internal"));
        assert.ok(!lines.some((l) => l.startsWith("dns ")));
        assert.ok(!caddy.some((l) => l.startsWith("Secret=") && l.includes("CF_API_TOKEN")), "no token without DNS-01");
      } else {
        assert.ok(lines.includes("dns cloudflare {$CF_API_TOKEN}"));
        assert.ok(!lines.includes("tls internal"));
        assert.deepEqual(
          caddy.filter((l) => l.startsWith("Secret=") && !l.includes("l7-credential")),
          [tokenSecret],
        );
      }
    });

    it(`${label}: only an l7 service's Caddy holds a credential for Envoy's L7 listener, and sends it there`, () => {
      const lines = caddyLines(fileNamed(files, "Caddyfile").content);
      const caddy = sectionLines(fileNamed(files, `${svc.name}-caddy.container`).content, "Container");
      const app = sectionLines(fileNamed(files, `${svc.name}-app.container`).content, "Container");
      const secret = `Secret=${l7CredentialSecretName(svc)},type=env,target=EDGEPLANE_L7_CREDENTIAL`;
      const header = "header_up x-edgeplane-l7-credential {env.EDGEPLANE_L7_CREDENTIAL}";
      assert.equal(caddy.includes(secret), svc.l7 !== undefined);
      assert.equal(lines.includes(header), svc.l7 !== undefined);
      assert.ok(!app.some((l) => l.includes("l7-credential")), "the app never gets it");
    });

    it(`${label}: secrets appear only by name`, () => {
      const previous = process.env.CF_API_TOKEN;
      process.env.CF_API_TOKEN = SENTINEL_TOKEN;
      try {
        for (const f of renderPodFiles(model, svc))
          assert.ok(!f.content.includes(SENTINEL_TOKEN), `${f.path} has no token value`);
      } finally {
        if (previous === undefined) delete process.env.CF_API_TOKEN;
        else process.env.CF_API_TOKEN = previous;
      }
      const app = sectionLines(fileNamed(files, `${svc.name}-app.container`).content, "Container");
      assert.deepEqual(
        app.filter((l) => l.startsWith("Secret=")),
        svc.secrets.map((s) => `Secret=${podmanSecretName(svc, s)},type=env,target=${s}`),
      );
      for (const s of svc.secrets) {
        assert.ok(!app.some((l) => l.startsWith(`Environment=${s}=`)), `${s} is not plain environment`);
      }
    });

    it(`${label}: the Caddy container mounts the folder of the installed Caddyfile and a persistent /data`, () => {
      const caddy = sectionLines(fileNamed(files, `${svc.name}-caddy.container`).content, "Container");
      const caddyfile = fileNamed(files, "Caddyfile");
      // The folder, so a Caddyfile replaced by rename is what `caddy reload` reads.
      assert.ok(caddyfile.path.endsWith("/caddy/Caddyfile"));
      assert.ok(caddy.includes(`Volume=${caddyfile.path.slice(0, -"/Caddyfile".length)}:/etc/caddy:ro,Z`));
      assert.ok(caddy.includes("Exec=caddy run --config /etc/caddy/Caddyfile --adapter caddyfile"));
      assert.ok(caddy.includes(`Volume=${svc.name}-caddy-data.volume:/data:Z`));
      assert.ok(caddy.includes(`Pod=${svc.name}.pod`));
      assert.ok(caddy.includes(`Image=${model.images.caddy}`));
      const volume = sectionLines(fileNamed(files, `${svc.name}-caddy-data.volume`).content, "Volume");
      assert.deepEqual(volume, [`VolumeName=${svc.name}-caddy-data`]);
    });
  }

  it("the app container carries the service's env, secrets and volumes, in the pod", () => {
    const svc = service(fleet, "grafana");
    const app = sectionLines(fileNamed(renderPodFiles(fleet, svc), "grafana-app.container").content, "Container");
    assert.deepEqual(app, [
      "ContainerName=grafana-app",
      "Pod=grafana.pod",
      "Image=docker.io/grafana/grafana:11.2.0",
      "Environment=GF_LOG_MODE=console",
      "Environment=GF_SERVER_ROOT_URL=https://grafana.example.org",
      "Secret=grafana-gf-security-secret-key,type=env,target=GF_SECURITY_SECRET_KEY",
      "Volume=grafana-data:/var/lib/grafana",
    ]);
  });

  it("quotes environment values that need it", () => {
    const svc: Service = { ...service(single, "whoami"), env: [["GREETING", 'say "hi" to 100%']] };
    const model: Model = { ...single, services: [svc] };
    const app = fileNamed(renderPodFiles(model, svc), "whoami-app.container").content;
    assert.ok(app.includes('\nEnvironment="GREETING=say \\"hi\\" to 100%%"\n'));
  });

  it("services behind Authentik get forward_auth after the strip, with public paths let through first", () => {
    const svc = service(fleet, "grafana");
    const lines = caddyLines(renderCaddyfile(fleet, svc));
    const at = (line: string) => {
      const i = lines.indexOf(line);
      assert.ok(i >= 0, `has ${line}`);
      return i;
    };
    const block = (start: number) => lines.slice(start + 1, lines.indexOf("}", start));
    const strip = at("request_header -*authentik*");
    const outpost = at("reverse_proxy /outpost.goauthentik.io/* https://auth.example.org {");
    const publicProxy = at("reverse_proxy @public localhost:3000 {");
    const auth = at("forward_auth https://auth.example.org {");
    const refuse = at("respond @anonymous 403");
    const app = at("reverse_proxy localhost:3000 {");
    assert.ok(strip < outpost && outpost < publicProxy && publicProxy < auth && auth < refuse && refuse < app);
    // Exact and case-sensitive on the raw request target (the live forward-auth test shows why).
    assert.ok(lines.some((l) => l.startsWith("@public expression ") && l.includes("^(/api/health)([?][^#]*)?$")));
    const toAuthentik = [
      "header_up Host auth.example.org",
      "header_up X-Forwarded-Host grafana.example.org",
      "transport http {",
      "tls_server_name auth.example.org",
    ];
    assert.deepEqual(block(auth), [
      "uri /outpost.goauthentik.io/auth/caddy",
      `copy_headers ${AUTHENTIK_HEADERS.join(" ")}`,
      ...toAuthentik,
    ]);
    assert.deepEqual(block(outpost), toAuthentik);
    // The app, public path or not, is told the site's own name too.
    for (const proxy of [publicProxy, app]) assert.ok(block(proxy).includes("header_up X-Forwarded-Host grafana.example.org"));
    // Whatever the outpost lets through without a user never reaches the app.
    assert.ok(lines.includes("@anonymous header !X-Authentik-Username"));
    assert.ok(lines.includes("log_append user {http.request.header.X-Authentik-Username}"));
    const pod = sectionLines(fileNamed(renderPodFiles(fleet, svc), "grafana.pod").content, "Pod");
    assert.ok(pod.includes("PodmanArgs=--add-host=auth.example.org:100.64.0.1"), "Authentik resolves to Envoy on the tailnet");
  });

  it("every site's access log redacts credentials in query strings and token headers", () => {
    for (const [model, name] of [
      [fleet, "grafana"],
      [fleet, "authentik"],
      [single, "whoami"],
    ] as const) {
      const lines = caddyLines(renderCaddyfile(model, service(model, name)));
      const fields = lines.indexOf("fields {");
      assert.ok(lines[fields - 2] === "format filter {" && lines[fields - 1] === "wrap json", `${name}: JSON, filtered`);
      const filters = lines.slice(fields + 1, lines.indexOf("}", fields));
      const query = `regexp ${formatToken(secretParameterRegexp())} $1=REDACTED`;
      for (const field of ["request>uri", "request>headers>Referer", "resp_headers>Location"])
        assert.ok(filters.includes(`${field} ${query}`), `${name}: ${field}`);
      for (const header of SECRET_HEADERS) assert.ok(filters.includes(`request>headers>${header} regexp ^.*$ REDACTED`), header);
    }
  });

  it("a service behind Authentik without public paths has no bypass, and still refuses a request without a user", () => {
    const lines = caddyLines(renderCaddyfile(fleet, service(fleet, "pgadmin")));
    assert.ok(!lines.some((l) => l.startsWith("@public")));
    assert.ok(!lines.some((l) => l.startsWith("reverse_proxy @public")));
    const auths = lines.flatMap((l, i) => (l.startsWith("forward_auth ") ? [i] : []));
    const refuse = lines.indexOf("respond @anonymous 403");
    assert.ok(auths.length > 0 && refuse > Math.max(...auths) && refuse < lines.indexOf("reverse_proxy localhost:80 {"));
  });

  it("authentikDial moves only the address dialled: SNI, Host and the certificate name stay the Authentik FQDN", () => {
    const svc = service(fleet, "grafana");
    const usual = renderCaddyfile(fleet, svc);
    const pointed = renderCaddyfile(fleet, svc, { authentikDial: "127.0.0.1:9443" });
    assert.equal(pointed, usual.replaceAll("https://auth.example.org {", "https://127.0.0.1:9443 {"));
    assert.equal(pointed.split("https://127.0.0.1:9443 {").length - 1, 2, "the outpost route and forward_auth");
    assert.equal(
      renderCaddyfile(fleet, service(fleet, "vllm"), { authentikDial: "127.0.0.1:9443" }),
      renderCaddyfile(fleet, service(fleet, "vllm")),
    );
  });

  it("services without auth, and Authentik itself, have no forward_auth", () => {
    for (const name of ["authentik", "vllm"]) {
      const text = renderCaddyfile(fleet, service(fleet, name));
      assert.ok(!text.includes("forward_auth"), name);
      assert.ok(!text.includes("/outpost.goauthentik.io"), name);
    }
    assert.ok(!renderCaddyfile(single, service(single, "whoami")).includes("forward_auth"));
  });

  it("the Authentik site passes X-Forwarded-* only from hosts that run a service behind Authentik", () => {
    const trusted = (m: Model) => {
      const lines = caddyLines(renderCaddyfile(m, service(m, "authentik")));
      const proxy = lines.indexOf("reverse_proxy localhost:9000 {");
      assert.ok(proxy >= 0);
      return lines.slice(proxy + 1, lines.indexOf("}", proxy)).filter((l) => l.startsWith("trusted_proxies"));
    };
    // gpu runs only vllm, which has no auth: its pods have nothing to ask Authentik.
    assert.deepEqual(trusted(fleet), ["trusted_proxies 100.64.0.1/32"]);
    const gpuAuth: Model = {
      ...fleet,
      services: fleet.services.map((s) => (s.name === "vllm" ? { ...s, auth: { groups: ["ml"] } } : s)),
    };
    assert.deepEqual(trusted(gpuAuth), ["trusted_proxies 100.64.0.1/32 100.64.0.2/32"]);
    assert.ok(!caddyLines(renderCaddyfile(fleet, service(fleet, "grafana"))).some((l) => l.startsWith("trusted_proxies")));
  });

  it("gives the ACME account email only when the stack sets one", () => {
    const svc = service(single, "whoami");
    assert.ok(!caddyLines(renderCaddyfile(single, svc)).some((l) => l.startsWith("email ")));
    const withEmail: Model = { ...single, tls: { issuer: "cloudflare-dns", email: "ops@example.org" } };
    assert.ok(caddyLines(renderCaddyfile(withEmail, svc)).includes("email ops@example.org"));
  });

  it("Caddy's admin API is only a unix socket in its own container, and it never listens on :80", () => {
    for (const { model, svc } of cases) {
      const lines = caddyLines(renderCaddyfile(model, svc));
      const admin = lines.filter((l) => l.startsWith("admin "));
      assert.deepEqual(admin, ["admin unix//run/caddy-admin.sock"]);
      assert.ok(lines.includes("auto_https disable_redirects"));
    }
  });
});

describe("marshalCaddyfile", () => {
  it("indents with tabs and writes blocks the way caddy fmt does", () => {
    const text = marshalCaddyfile({
      origin: "test",
      nodes: [directive("example.org", [directive("tls", [directive(["dns", "cloudflare", placeholder("env.CF_API_TOKEN")])])])],
    });
    assert.equal(
      text,
      [
        "# managed by edgeplane — test; do not edit by hand",
        "example.org {",
        "\ttls {",
        "\t\tdns cloudflare {env.CF_API_TOKEN}",
        "\t}",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("quotes tokens the lexer would otherwise split or misread, and leaves placeholders bare", () => {
    assert.equal(formatToken("two words"), '"two words"');
    assert.equal(formatToken('say "hi"'), '"say \\"hi\\""');
    assert.equal(formatToken("#notacomment"), '"#notacomment"');
    assert.equal(formatToken("{literal}"), '"\\{literal\\}"');
    assert.equal(formatToken(""), '""');
    assert.equal(formatToken("<<EOF"), '"<<EOF"');
    assert.equal(formatToken("-X-Authentik-*"), "-X-Authentik-*");
    assert.equal(formatToken("-*authentik*"), "-*authentik*");
    assert.equal(formatToken("-*_*"), "-*_*");
    assert.equal(formatToken(placeholder("env.CF_API_TOKEN")), "{env.CF_API_TOKEN}");
  });

  it("rejects what it cannot write faithfully", () => {
    assert.throws(() => formatToken("a\nb"), /control character/);
    assert.throws(() => formatToken("{$HOME}"), /environment variable/);
    assert.throws(() => formatToken("ends\\"), /backslash/);
    assert.throws(() => formatToken(placeholder("bad name")), /placeholder/);
    assert.throws(() => marshalCaddyfile({ origin: "t", nodes: [{ kind: "comment", text: "x\ny" }] }), /control character/);
  });
});
