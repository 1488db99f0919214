/**
 * The one Caddy release edgeplane runs: the default sidecar image (`images.caddy`) and
 * the Caddy the test suite builds and runs (tools/cmd/caddy). tools/go.mod must pin
 * github.com/caddyserver/caddy/v2 at the same version; test/caddy-version.test.ts fails
 * when the two drift, and when the built binary is another release.
 *
 * 2.11.7, not newer: 2.11.8 started forwarding request trailers to the upstream
 * (modules/caddyhttp/reverseproxy/reverseproxy.go, `requestBodyWithTrailers`), so a
 * client's declared trailer `X-Authentik-Username` reaches the app, and no Caddyfile
 * option removes it. Not older: 2.11.5 and later drop request headers whose name has
 * `_` or `.` (GHSA-f59h-q822-g45g, GHSA-49wc-4hcv-v58q); the rendered Caddyfile strips
 * those too, for a custom older image. The image is CaddyBuilds' automated build of each
 * Caddy release with the caddy-dns/cloudflare module
 * (github.com/CaddyBuilds/caddy-cloudflare, .github/workflows/build-docker-image-standard.yml
 * pushes ghcr.io/caddybuilds/caddy-cloudflare:<version>).
 */
export const CADDY_VERSION = "2.11.7";

/** The default `images.caddy`. */
export const DEFAULT_CADDY_IMAGE = `ghcr.io/caddybuilds/caddy-cloudflare:${CADDY_VERSION}`;
