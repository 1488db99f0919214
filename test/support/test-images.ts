/**
 * The images the end-to-end stack runs, served by each test host's own registry
 * (tools/cmd/test-registry on 127.0.0.1:5000) since no public registry is reachable.
 * Each is one layer of static binaries from the tools cache (scripts/build-tools.sh):
 *
 *  - caddy:   the Caddy the other tests run (tools/cmd/caddy: Caddy at the version in
 *             tools/go.mod with the caddy-dns/cloudflare module), laid out like the production image
 *             (/usr/bin/caddy, XDG dirs /config and /data);
 *  - echo:    an app that answers with what it received (tools/cmd/test-standin echo);
 *  - outpost: a stand-in for Authentik's embedded outpost, with an `ak` that answers
 *             edgeplane's blueprint checks (test-standin outpost, ak);
 *  - caddy without the DNS module (Caddy's own cmd/caddy), for a change the host's
 *             `caddy validate` must refuse;
 *  - envoy:   `envoy --mode validate` runs Envoy's schema checks (envoy-validate);
 *             `envoy -c …` idles: Envoy's data plane is not run.
 */
import type { ImageSpec } from "./hosts";

export const REGISTRY = "localhost:5000";

export const IMAGES = {
  caddy: `${REGISTRY}/edgeplane-caddy:test`,
  caddyWithoutDns: `${REGISTRY}/edgeplane-caddy:no-dns`,
  envoy: `${REGISTRY}/edgeplane-envoy:test`,
  echo: `${REGISTRY}/edgeplane-echo:test`,
  /** The same app under another tag: an image change in the config. */
  echoV2: `${REGISTRY}/edgeplane-echo:v2`,
  outpost: `${REGISTRY}/edgeplane-outpost:test`,
} as const;

const PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const tmp = { path: "tmp", dir: true as const, mode: 0o1777 };

export function testImages(tools: { caddy: string; caddyPlain: string; standin: string; envoyValidate: string }): ImageSpec[] {
  const caddy = (tag: string, binary: string): ImageSpec => ({
    name: "edgeplane-caddy",
    tags: [tag],
    config: {
      Env: [PATH, "XDG_CONFIG_HOME=/config", "XDG_DATA_HOME=/data"],
      Cmd: ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"],
      WorkingDir: "/srv",
    },
    files: [
      { path: "usr/bin/caddy", source: binary, mode: 0o755 },
      { path: "config", dir: true, mode: 0o755 },
      { path: "data", dir: true, mode: 0o755 },
      { path: "etc/caddy", dir: true, mode: 0o755 },
      { path: "srv", dir: true, mode: 0o755 },
      tmp,
    ],
  });
  return [
    caddy("test", tools.caddy),
    caddy("no-dns", tools.caddyPlain),
    {
      name: "edgeplane-echo",
      tags: ["test", "v2"],
      config: { Env: [PATH, "PORT=8080"], Entrypoint: ["/usr/local/bin/echo"] },
      files: [{ path: "usr/local/bin/echo", source: tools.standin, mode: 0o755 }, tmp],
    },
    {
      name: "edgeplane-outpost",
      tags: ["test"],
      config: { Env: [PATH, "PORT=9000"], Entrypoint: ["/usr/local/bin/outpost"] },
      files: [
        { path: "usr/local/bin/outpost", source: tools.standin, mode: 0o755 },
        { path: "usr/local/bin/ak", source: tools.standin, mode: 0o755 },
        { path: "blueprints", dir: true, mode: 0o755 },
        tmp,
      ],
    },
    {
      name: "edgeplane-envoy",
      tags: ["test"],
      config: { Env: [PATH] },
      files: [
        { path: "usr/local/bin/envoy", source: tools.standin, mode: 0o755 },
        { path: "usr/local/bin/envoy-validate", source: tools.envoyValidate, mode: 0o755 },
        {
          path: "etc/passwd",
          content: "root:x:0:0:root:/root:/sbin/nologin\nenvoy:x:101:101:envoy:/:/sbin/nologin\n",
          mode: 0o644,
        },
        { path: "etc/group", content: "root:x:0:\nenvoy:x:101:\n", mode: 0o644 },
        { path: "etc/envoy", dir: true, mode: 0o755 },
        tmp,
      ],
    },
  ];
}
