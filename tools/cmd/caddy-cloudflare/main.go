// Command caddy-cloudflare is Caddy with only the Cloudflare DNS provider plugged in:
// the modules of the default sidecar image, ghcr.io/caddybuilds/caddy-cloudflare
// (`xcaddy build --with github.com/caddy-dns/cloudflare`). edgeplane's tests run it as
// the Caddy of an image that lacks a module a Caddyfile needs (http.handlers.rate_limit),
// to see the host-side check refuse it by name.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Plug in Caddy modules here.
	_ "github.com/caddy-dns/cloudflare"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
