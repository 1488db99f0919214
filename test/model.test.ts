import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildModel, ConfigError } from "../model";
import { EDGE_HOST_KEY, GPU_HOST_KEY } from "./fixtures/models";

/** A valid config written straight from the documented config contract. */
function validConfig(): any {
  return {
    domain: "example.org",
    cloudflare: { zoneId: "0123456789abcdef0123456789abcdef" },
    tls: { issuer: "cloudflare-dns" },
    hosts: {
      edge: {
        ingress: true,
        publicIPv4: "203.0.113.10",
        publicIPv6: "2001:db8::10",
        tailnetIP: "100.64.0.1",
        ssh: { host: "100.64.0.1", user: "deploy", hostKey: EDGE_HOST_KEY },
      },
      gpu: { tailnetIP: "100.64.0.2", ssh: { host: "100.64.0.2", user: "deploy", hostKey: GPU_HOST_KEY } },
    },
    services: {
      grafana: {
        host: "edge",
        image: "docker.io/grafana/grafana:11.2.0",
        port: 3000,
        caddyPort: 10443,
        fqdn: "grafana.example.org",
        exposure: "public",
        auth: { groups: ["admins"] },
        publicPaths: ["/api/health"],
        env: { GF_LOG_MODE: "console" },
        secrets: ["GF_SECURITY_SECRET_KEY"],
        volumes: ["grafana-data:/var/lib/grafana"],
      },
      authentik: {
        host: "edge",
        image: "ghcr.io/goauthentik/server:2025.10.1",
        port: 9000,
        caddyPort: 10400,
        fqdn: "auth.example.org",
      },
      vllm: {
        host: "gpu",
        image: "docker.io/vllm/vllm-openai:v0.6.3",
        port: 8000,
        caddyPort: 10450,
        l7: {
          backends: [
            { host: "gpu", port: 8001 },
            { host: "gpu", port: 8002 },
          ],
          healthPath: "/health",
        },
      },
    },
    authentik: { service: "authentik" },
  };
}

function problemsOf(mutate: (c: any) => void): readonly string[] {
  const config = validConfig();
  mutate(config);
  try {
    buildModel(config);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail("config was accepted");
}

describe("buildModel on a valid config", () => {
  const model = buildModel(validConfig());

  it("creates no Authentik group unless authentik.createGroups is true", () => {
    assert.equal(model.authentik?.createGroups, undefined);
    const config = validConfig();
    config.authentik.createGroups = true;
    assert.equal(buildModel(config).authentik?.createGroups, true);
  });

  it("defaults the FQDN to <service>.<domain> and keeps explicit ones", () => {
    assert.equal(model.services.find((s) => s.name === "vllm")?.fqdn, "vllm.example.org");
    assert.equal(model.services.find((s) => s.name === "authentik")?.fqdn, "auth.example.org");
  });

  it("defaults the SSH port to 22 and exposure to public", () => {
    assert.deepEqual(
      model.hosts.map((h) => h.ssh.port),
      [22, 22],
    );
    assert.equal(model.services.find((s) => s.name === "vllm")?.exposure, "public");
  });

  it("keeps each host's pinned SSH key as <type> <base64>, without the comment", () => {
    const m = buildModel(
      (() => {
        const c = validConfig();
        c.hosts.edge.ssh.hostKey = `  ${EDGE_HOST_KEY}  root@edge `;
        return c;
      })(),
    );
    assert.deepEqual(
      m.hosts.map((h) => [h.name, h.ssh.hostKey]),
      [
        ["edge", EDGE_HOST_KEY],
        ["gpu", GPU_HOST_KEY],
      ],
    );
  });

  it("leaves a host unpinned only with the explicit opt-out", () => {
    const c = validConfig();
    c.hosts.gpu.ssh = { host: "100.64.0.2", user: "deploy", insecureSkipHostKeyCheck: true };
    const gpu = buildModel(c).hosts.find((h) => h.name === "gpu")!;
    assert.deepEqual(gpu.ssh, { host: "100.64.0.2", user: "deploy", port: 22 });
  });

  it("sorts hosts and services by name whatever the config order", () => {
    assert.deepEqual(
      model.services.map((s) => s.name),
      ["authentik", "grafana", "vllm"],
    );
    const reversed = validConfig();
    reversed.services = Object.fromEntries(Object.entries(reversed.services).reverse());
    reversed.hosts = Object.fromEntries(Object.entries(reversed.hosts).reverse());
    assert.deepEqual(buildModel(reversed), model);
  });

  it("fills image and Envoy defaults and Cloudflare's permission groups", () => {
    assert.match(model.images.caddy, /caddy-cloudflare/);
    assert.equal(model.envoy.adminPort, 9901);
    assert.deepEqual(model.cloudflare.permissionGroups, {
      dnsWrite: "4755a26eedb94da69e1066d98aa820be",
      zoneRead: "c8fed203ed3043cba015a93ad1616f1f",
    });
  });

  it("gives l7 services streaming-safe defaults and an L7 port derived from caddyPort", () => {
    const l7 = model.services.find((s) => s.name === "vllm")!.l7!;
    assert.equal(l7.listenPort, 20450);
    assert.equal(l7.streamIdleTimeout, "300s");
    assert.equal(l7.retries, 2);
    assert.deepEqual(l7.healthCheck, { interval: "10s", timeout: "5s", unhealthyThreshold: 3, healthyThreshold: 2 });
    assert.deepEqual(l7.outlierDetection, {
      consecutive5xx: 5,
      interval: "10s",
      baseEjectionTime: "30s",
      maxEjectionPercent: 50,
    });
  });

  it("lower-cases FQDNs and turns numeric and boolean env values into strings", () => {
    const m = buildModel(
      (() => {
        const c = validConfig();
        c.services.grafana.fqdn = "Grafana.Example.ORG";
        c.services.grafana.env = { B: 1, A: false };
        return c;
      })(),
    );
    const grafana = m.services.find((s) => s.name === "grafana")!;
    assert.equal(grafana.fqdn, "grafana.example.org");
    assert.deepEqual(grafana.env, [
      ["A", "false"],
      ["B", "1"],
    ]);
  });
});

describe("buildModel rejects invalid configs, naming each key", () => {
  const cases: [string, (c: any) => void, string[]][] = [
    [
      "unknown host reference",
      (c) => (c.services.grafana.host = "edg"),
      ['edgeplane:services.grafana.host: unknown host "edg" (hosts: "edge", "gpu")'],
    ],
    [
      "duplicate FQDN",
      (c) => (c.services.vllm.fqdn = "grafana.example.org"),
      ['edgeplane:services.vllm.fqdn: grafana.example.org is already the name of service "grafana"'],
    ],
    [
      "caddyPort collision on one host",
      (c) => (c.services.authentik.caddyPort = 10443),
      ['edgeplane:services.grafana.caddyPort: port 10443 on host "edge" is already used by the Caddy of service "authentik"'],
    ],
    [
      "Caddy metrics port on another service's caddyPort",
      (c) => (c.services.grafana.metricsPort = 10400),
      ['edgeplane:services.grafana.metricsPort: port 10400 on host "edge" is already used by the Caddy of service "authentik"'],
    ],
    [
      "Caddy metrics port on the app's own port",
      (c) => (c.services.grafana.metricsPort = 3000),
      ["edgeplane:services.grafana.metricsPort: port 3000 is also the app's port of the service"],
    ],
    [
      "default Caddy metrics port on Envoy's metrics port",
      (c) => (c.envoy = { metricsPort: 30443 }),
      [
        "edgeplane:services.grafana.caddyPort: port 30443 is reserved for Envoy's metrics endpoint (Caddy's metrics port defaults to caddyPort + 20000; set metricsPort)",
      ],
    ],
    [
      "default Caddy metrics port above 65535",
      (c) => (c.services.vllm = { ...c.services.vllm, caddyPort: 50000, l7: { ...c.services.vllm.l7, listenPort: 40000 } }),
      ["edgeplane:services.vllm.metricsPort: caddyPort + 20000 is above 65535; set metricsPort"],
    ],
    [
      "Envoy's metrics port on its admin port",
      (c) => (c.envoy = { adminPort: 9950, metricsPort: 9950 }),
      ["edgeplane:envoy.metricsPort: port 9950 is already Envoy's admin port (envoy.adminPort)"],
    ],
    [
      "reserved port 443",
      (c) => (c.services.grafana.caddyPort = 443),
      ["edgeplane:services.grafana.caddyPort: port 443 is reserved for Envoy's HTTPS listener"],
    ],
    [
      "reserved port 80",
      (c) => (c.services.vllm.caddyPort = 80),
      ["edgeplane:services.vllm.caddyPort: port 80 is reserved for Envoy's HTTP listener"],
    ],
    [
      "Envoy admin port on the ingress host",
      (c) => (c.services.grafana.caddyPort = 9901),
      ["edgeplane:services.grafana.caddyPort: port 9901 is reserved for Envoy's admin interface"],
    ],
    [
      "privileged caddyPort",
      (c) => (c.services.grafana.caddyPort = 8),
      ["edgeplane:services.grafana.caddyPort: must be 1024 or above (rootless pods cannot bind privileged ports)"],
    ],
    [
      "no ingress host",
      (c) => (c.hosts.edge.ingress = false),
      ["edgeplane:hosts: exactly one host must have ingress: true, found 0"],
    ],
    [
      "two ingress hosts",
      (c) => Object.assign(c.hosts.gpu, { ingress: true, publicIPv4: "203.0.113.11" }),
      ["edgeplane:hosts: exactly one host must have ingress: true, found 2 (edge, gpu)"],
    ],
    [
      "ingress host without public address",
      (c) => delete c.hosts.edge.publicIPv4,
      ["edgeplane:hosts.edge.publicIPv4: is required on the ingress host"],
    ],
    [
      "auth without Authentik",
      (c) => delete c.authentik,
      ["edgeplane:services.grafana.auth: needs edgeplane:authentik, which names the service that runs Authentik"],
    ],
    [
      "Authentik names an unknown service",
      (c) => (c.authentik.service = "sso"),
      ['edgeplane:authentik.service: unknown service "sso"'],
    ],
    [
      "bad service name",
      (c) => ((c.services.Grafana_2 = c.services.grafana), delete c.services.grafana),
      ["edgeplane:services.Grafana_2: service names must match [a-z0-9-] (at most 29, no leading or trailing -)"],
    ],
    [
      "bad host name",
      (c) => (
        (c.hosts["-gpu"] = c.hosts.gpu),
        delete c.hosts.gpu,
        (c.services.vllm.host = "-gpu"),
        (c.services.vllm.l7.backends = [{ host: "-gpu", port: 8001 }])
      ),
      ["edgeplane:hosts.-gpu: host names must match [a-z0-9-] (at most 63, no leading or trailing -)"],
    ],
    [
      "misspelt key",
      (c) => (c.services.grafana.imgae = "x"),
      ["edgeplane:services.grafana.imgae: unknown key; did you mean edgeplane:services.grafana.image?"],
    ],
    [
      "port out of range",
      (c) => (c.services.grafana.port = 70000),
      ["edgeplane:services.grafana.port: must be between 1 and 65535"],
    ],
    [
      "port as a string",
      (c) => (c.services.grafana.port = "3000"),
      ["edgeplane:services.grafana.port: must be a number, got string"],
    ],
    ["missing image", (c) => delete c.services.vllm.image, ["edgeplane:services.vllm.image: is required"]],
    [
      "bad exposure",
      (c) => (c.services.grafana.exposure = "private"),
      ['edgeplane:services.grafana.exposure: must be one of "public", "tailnet", got "private"'],
    ],
    [
      "tailnet IP outside 100.64.0.0/10",
      (c) => (c.hosts.gpu.tailnetIP = "10.0.0.2"),
      ["edgeplane:hosts.gpu.tailnetIP: 10.0.0.2 is not a tailnet address (100.64.0.0/10)"],
    ],
    [
      "shared tailnet IP",
      (c) => (c.hosts.gpu.tailnetIP = "100.64.0.1"),
      ['edgeplane:hosts.gpu.tailnetIP: 100.64.0.1 is already the tailnet address of host "edge"'],
    ],
    [
      "bad zone ID",
      (c) => (c.cloudflare.zoneId = "example.org"),
      ["edgeplane:cloudflare.zoneId: must be a 32-character lowercase hex Cloudflare zone ID"],
    ],
    [
      "unknown TLS issuer",
      (c) => (c.tls.issuer = "letsencrypt"),
      ['edgeplane:tls.issuer: must be one of "cloudflare-dns", "internal", got "letsencrypt"'],
    ],
    [
      "secret also in env",
      (c) => (c.services.grafana.env.GF_SECURITY_SECRET_KEY = "x"),
      [
        "edgeplane:services.grafana.env.GF_SECURITY_SECRET_KEY: GF_SECURITY_SECRET_KEY is also listed in secrets; a variable is either plain or secret",
      ],
    ],
    [
      "publicPaths without auth",
      (c) => (c.services.vllm.publicPaths = ["/health"]),
      ["edgeplane:services.vllm.publicPaths: only means something with auth; without auth every path is public"],
    ],
    [
      "passAuthorization without apiClients",
      (c) => (c.services.grafana.auth.passAuthorization = true),
      [
        "edgeplane:services.grafana.auth.passAuthorization: only means something with apiClients: true (without it the app always gets Authorization)",
      ],
    ],
    [
      "a rule under a public path, and a public path under a rule",
      (c) => {
        c.services.grafana.publicPaths = ["/api/health", "/hooks/*"];
        c.services.grafana.auth.rules = [
          { path: "/hooks/admin/*", groups: ["admins"] },
          { path: "/API/*", groups: ["admins"] },
          { path: "/admin/*", groups: ["admins"] },
        ];
      },
      [
        "edgeplane:services.grafana.auth.rules[0].path: /hooks/admin/* overlaps public path /hooks/* (edgeplane:services.grafana.publicPaths[1]); a path is either public or under a rule",
        "edgeplane:services.grafana.auth.rules[1].path: /API/* overlaps public path /api/health (edgeplane:services.grafana.publicPaths[0]); a path is either public or under a rule",
      ],
    ],
    [
      "a rule on exactly a public path, with a trailing slash",
      (c) => (c.services.grafana.auth.rules = [{ path: "/api/health/", groups: ["admins"] }]),
      [
        "edgeplane:services.grafana.auth.rules[0].path: /api/health/ overlaps public path /api/health (edgeplane:services.grafana.publicPaths[0]); a path is either public or under a rule",
      ],
    ],
    [
      "rule groups the edge cannot match, a dot segment, a rule twice",
      (c) =>
        (c.services.grafana.auth.rules = [
          { path: "/admin/*", groups: ["admins|ops", "it's", "ok"] },
          { path: "/x/../admin/*", groups: ["admins"] },
          { path: "/ADMIN/*", groups: ["admins"] },
        ]),
      [
        "edgeplane:services.grafana.auth.rules[0].groups[0]: cannot be matched at the edge: a group name in a rule must not contain | (the outpost's separator), a quote, a backslash, a brace or a control character",
        "edgeplane:services.grafana.auth.rules[0].groups[1]: cannot be matched at the edge: a group name in a rule must not contain | (the outpost's separator), a quote, a backslash, a brace or a control character",
        "edgeplane:services.grafana.auth.rules[1].path: must not contain // or a . or .. segment",
      ],
    ],
    [
      "the same rule path twice, in another case",
      (c) =>
        (c.services.grafana.auth.rules = [
          { path: "/admin/*", groups: ["admins"] },
          { path: "/ADMIN/*", groups: ["ops"] },
        ]),
      ["edgeplane:services.grafana.auth.rules[1].path: /ADMIN/* is already the path of edgeplane:services.grafana.auth.rules[0]"],
    ],
    [
      "L7 backend on an unknown host",
      (c) => (c.services.vllm.l7.backends[1].host = "gpu2"),
      ['edgeplane:services.vllm.l7.backends[1].host: unknown host "gpu2" (hosts: "edge", "gpu")'],
    ],
    [
      "L7 backend port taken by a Caddy",
      (c) => (c.services.vllm.l7.backends[0].port = 10450),
      ['edgeplane:services.vllm.l7.backends[0].port: port 10450 on host "gpu" is already used by the Caddy of service "vllm"'],
    ],
    [
      "Authentik behind itself",
      (c) => (c.services.authentik.auth = { groups: ["admins"] }),
      ["edgeplane:services.authentik.auth: the Authentik service cannot sit behind itself"],
    ],
    [
      "empty auth groups",
      (c) => (c.services.grafana.auth.groups = []),
      ["edgeplane:services.grafana.auth.groups: must name at least one group"],
    ],
    [
      "L7 listener port taken on the ingress host",
      (c) => (c.services.vllm.l7.listenPort = 10443),
      ['edgeplane:services.vllm.l7.listenPort: port 10443 on host "edge" is already used by the Caddy of service "grafana"'],
    ],
    [
      "L7 duration without a unit",
      (c) => (c.services.vllm.l7.streamIdleTimeout = "300"),
      ['edgeplane:services.vllm.l7.streamIdleTimeout: must be a duration in seconds such as "30s" or "0.5s"'],
    ],
    ["unknown L7 setting", (c) => (c.services.vllm.l7.timeout = "0s"), ["edgeplane:services.vllm.l7.timeout: unknown key"]],
    ["missing domain", (c) => delete c.domain, ["edgeplane:domain: is required"]],
    [
      "egress address that is not an address",
      (c) => (c.hosts.edge.egressIPs = ["203.0.113.10", "203.0.113.0/33", "edge.example.org"]),
      [
        "edgeplane:hosts.edge.egressIPs[1]: must be an IP address or CIDR range such as 203.0.113.10 or 2001:db8::/64",
        "edgeplane:hosts.edge.egressIPs[2]: must be an IP address or CIDR range such as 203.0.113.10 or 2001:db8::/64",
      ],
    ],
    [
      "token rotation without tokens",
      (c) => {
        c.tls = { issuer: "internal" };
        c.services.grafana.tokenRotation = "2026-11";
      },
      ["edgeplane:services.grafana.tokenRotation: only means something with tls.issuer cloudflare-dns (the pod has no token)"],
    ],
    [
      "challenge zone without a name",
      (c) => (c.cloudflare.challengeZone = { id: "0123456789abcdef0123456789abcdef" }),
      ["edgeplane:cloudflare.challengeZone.name: is required"],
    ],
    [
      "adopting for an unknown service, and a CNAME without challenge delegation",
      (c) =>
        (c.adopt = {
          records: { grafna: { A: "0123456789abcdef0123456789abcdef" }, grafana: { CNAME: "0123456789abcdef0123456789abcdef" } },
        }),
      [
        'edgeplane:adopt.records.grafna: unknown service "grafna"',
        "edgeplane:adopt.records.grafana.CNAME: only the ACME challenge CNAME is managed, and only with cloudflare.challengeZone",
      ],
    ],
    [
      "adopting a token, whose value Cloudflare never returns",
      (c) => (c.adopt = { tokens: { grafana: "0123456789abcdef0123456789abcdef" } }),
      [
        "edgeplane:adopt.tokens: an existing API token cannot be adopted: Cloudflare returns a token's value only when it creates the token (https://developers.cloudflare.com/fundamentals/api/get-started/create-token/), so an imported token has no value to give the pod. Remove the entry and let edgeplane create a new token for the service; after the first `pulumi up`, delete the old token by hand (My Profile → API Tokens)",
      ],
    ],
    [
      "adopted record ID that is not an ID",
      (c) => (c.adopt = { records: { grafana: { A: "rec-1" } } }),
      ["edgeplane:adopt.records.grafana.A: must be a 32-character hex Cloudflare record ID"],
    ],
    [
      "createGroups that is not a boolean",
      (c) => (c.authentik.createGroups = "yes"),
      ["edgeplane:authentik.createGroups: must be a boolean, got string"],
    ],
    [
      "unknown Authentik flow key",
      (c) => (c.authentik.flows = { authorisation: "x" }),
      ["edgeplane:authentik.flows.authorisation: unknown key; did you mean edgeplane:authentik.flows.authorization?"],
    ],
    [
      "extra container with a reserved name, and one naming a secret the service does not have",
      (c) =>
        (c.services.grafana.containers = {
          caddy: { image: "docker.io/library/busybox:1.36" },
          renderer: {
            image: "docker.io/grafana/grafana-image-renderer:3.11.0",
            secrets: ["GF_SECURITY_SECRET_KEY", "TOKEN=RENDERER_TOKEN"],
          },
        }),
      [
        "edgeplane:services.grafana.containers.caddy: container names must match [a-z0-9-] and not be app or caddy",
        "edgeplane:services.grafana.containers.renderer.secrets[1]: RENDERER_TOKEN is not one of the service's secrets (services.grafana.secrets)",
      ],
    ],
    [
      "a command word systemd would split the unit on, and control characters in commands and env",
      (c) => {
        c.services.grafana.command = ["grafana", ";", "server"];
        c.services.grafana.env.GF_BANNER = "line one\nline two";
        c.services.grafana.containers = { worker: { image: "docker.io/library/busybox:1.36", command: ["sh", "-c", "a\tb"] } };
      },
      [
        "edgeplane:services.grafana.env.GF_BANNER: must not contain a newline, tab or other control character (a systemd unit line cannot hold one)",
        'edgeplane:services.grafana.command[1]: must not be a lone ";": systemd reads it as a command separator in ExecStart= and refuses the unit',
        "edgeplane:services.grafana.containers.worker.command[2]: must not contain a newline, tab or other control character (a systemd unit line cannot hold one)",
      ],
    ],
    [
      "tailnet policy that is not an object",
      (c) => (c.tailscale = { policy: ["acls"] }),
      ["edgeplane:tailscale.policy: must be an object, got array"],
    ],
    [
      "host without a pinned SSH host key",
      (c) => delete c.hosts.gpu.ssh.hostKey,
      [
        "edgeplane:hosts.gpu.ssh.hostKey: is required: the host's SSH public key (ssh-ed25519 AAAA…; `npm run preflight` prints it), so that secrets are sent only to this host; to connect unchecked for a first bootstrap, set insecureSkipHostKeyCheck: true instead",
      ],
    ],
    [
      "host key and the opt-out together",
      (c) => (c.hosts.gpu.ssh.insecureSkipHostKeyCheck = true),
      [
        "edgeplane:hosts.gpu.ssh.insecureSkipHostKeyCheck: contradicts hostKey: the key is pinned, so remove insecureSkipHostKeyCheck",
      ],
    ],
    [
      "host key in known_hosts form (host name first)",
      (c) => (c.hosts.gpu.ssh.hostKey = `100.64.0.2 ${GPU_HOST_KEY}`),
      [
        `edgeplane:hosts.gpu.ssh.hostKey: starts with "100.64.0.2", which is not a key type; drop the host name (ssh-keyscan and known_hosts put it first): use "${GPU_HOST_KEY}"`,
      ],
    ],
    [
      "RSA host key",
      (c) => (c.hosts.gpu.ssh.hostKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7"),
      [
        "edgeplane:hosts.gpu.ssh.hostKey: ssh-rsa is not accepted: pinned, it limits the connection to SHA-1 RSA signatures, which OpenSSH 8.8+ refuses; pin the host's Ed25519 key (/etc/ssh/ssh_host_ed25519_key.pub)",
      ],
    ],
    [
      "truncated host key",
      (c) => (c.hosts.gpu.ssh.hostKey = GPU_HOST_KEY.slice(0, -8)),
      ["edgeplane:hosts.gpu.ssh.hostKey: the key data is not a well-formed ssh-ed25519 key (truncated or copied wrong?)"],
    ],
    [
      "host key whose type does not match its data",
      (c) => (c.hosts.gpu.ssh.hostKey = GPU_HOST_KEY.replace("ssh-ed25519", "ecdsa-sha2-nistp256")),
      ["edgeplane:hosts.gpu.ssh.hostKey: the key data is a ssh-ed25519 key, but the line says ecdsa-sha2-nistp256"],
    ],
    [
      "host key that is not a key",
      (c) => (c.hosts.gpu.ssh.hostKey = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"),
      [
        "edgeplane:hosts.gpu.ssh.hostKey: must be an OpenSSH public key line, such as ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… (the host's /etc/ssh/ssh_host_ed25519_key.pub)",
      ],
    ],
  ];

  for (const [title, mutate, expected] of cases) {
    it(title, () => assert.deepEqual(problemsOf(mutate), expected));
  }

  it("reports every problem at once, across services and shapes", () => {
    const problems = problemsOf((c) => {
      c.services.grafana.port = "3000";
      c.services.vllm.host = "nowhere";
      c.services.authentik.caddyPort = 443;
    });
    assert.deepEqual(problems, [
      "edgeplane:services.grafana.port: must be a number, got string",
      "edgeplane:services.authentik.caddyPort: port 443 is reserved for Envoy's HTTPS listener",
      'edgeplane:services.vllm.host: unknown host "nowhere" (hosts: "edge", "gpu")',
    ]);
  });

  it("rejects unknown top-level keys with the closest known key, alongside the other problems", () => {
    const problems = problemsOf((c) => {
      c.tailscal = { adopt: true };
      c.envoi = { adminPort: 9902 };
      c.sshPrivatekey = "x";
      c.frobnicate = 1;
      c.services.vllm.l7.healthChek = {};
    });
    assert.deepEqual(problems, [
      "edgeplane:tailscal: unknown key; did you mean edgeplane:tailscale?",
      "edgeplane:envoi: unknown key; did you mean edgeplane:envoy?",
      "edgeplane:sshPrivatekey: unknown key; did you mean edgeplane:sshPrivateKey?",
      "edgeplane:frobnicate: unknown key",
      "edgeplane:services.vllm.l7.healthChek: unknown key; did you mean edgeplane:services.vllm.l7.healthCheck?",
    ]);
  });

  it("leaves the keys the program reads itself to the program", () => {
    const config = validConfig();
    config.sshPrivateKey = "-----BEGIN OPENSSH PRIVATE KEY-----";
    assert.equal(buildModel(config).domain, "example.org");
  });

  it("puts every problem in the error message", () => {
    const config = validConfig();
    config.services.grafana.host = "edg";
    assert.throws(() => buildModel(config), {
      name: "ConfigError",
      message:
        'invalid stack config (1 problem):\n  - edgeplane:services.grafana.host: unknown host "edg" (hosts: "edge", "gpu")',
    });
  });
});

describe("auth.rateLimit", () => {
  const problemsOf = (edit: (config: any) => void): readonly string[] => {
    const config = validConfig();
    edit(config);
    try {
      buildModel(config);
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.problems;
    }
    return [];
  };

  it("needs a Caddy image with the rate_limit module, not the default one", () => {
    assert.deepEqual(
      problemsOf((c) => (c.services.grafana.auth.rateLimit = { events: 60, window: "1m" })),
      [
        "edgeplane:services.grafana.auth.rateLimit: needs the Caddy module http.handlers.rate_limit, which the default images.caddy (ghcr.io/caddybuilds/caddy-cloudflare:2.11.7) does not have; set edgeplane:images.caddy to an image built with it (images/caddy/Containerfile)",
      ],
    );
    assert.deepEqual(
      problemsOf((c) => {
        c.images = { caddy: "registry.example.org/edgeplane-caddy:2.11.7" };
        c.services.grafana.auth.rateLimit = { events: 60, window: "1m", burst: 10 };
      }),
      [],
    );
  });

  it("refuses a burst above events and a window Caddy would not read", () => {
    const withLimit = (rateLimit: unknown) =>
      problemsOf((c) => {
        c.images = { caddy: "registry.example.org/edgeplane-caddy:2.11.7" };
        c.services.grafana.auth.rateLimit = rateLimit;
      });
    assert.deepEqual(withLimit({ events: 10, window: "1m", burst: 11 }), [
      "edgeplane:services.grafana.auth.rateLimit.burst: must be at most events (10): a burst caps how many of a window's requests may come back to back",
    ]);
    assert.deepEqual(withLimit({ events: 10, window: "1 minute" }), [
      'edgeplane:services.grafana.auth.rateLimit.window: must be a duration such as "500ms", "10s", "1m" or "1h"',
    ]);
    assert.deepEqual(withLimit({ events: 0, window: "1m" }), [
      "edgeplane:services.grafana.auth.rateLimit.events: must be between 1 and 1000000",
    ]);
  });
});
