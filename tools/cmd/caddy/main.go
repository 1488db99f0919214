// Command caddy is the Caddy server with the Cloudflare DNS provider and the
// rate_limit handler plugged in, built from the same main package that `xcaddy
// build --with github.com/caddy-dns/cloudflare --with github.com/mholt/caddy-ratelimit`
// generates (images/caddy/Containerfile builds that image). edgeplane's tests use it to run
// `caddy adapt --validate` on rendered Caddyfiles, so it must carry the same
// modules as the caddy-cloudflare image that runs in the pods; otherwise a
// `tls { dns cloudflare … }` block would fail with "module not registered".
//
// The Caddy version is pinned in tools/go.mod; it must stay >= v2.11.2, the
// first release whose forward_auth copy_headers deletes client-supplied copies
// of the copied headers (GHSA-7r4p-vjf4-gxv4, caddyserver/caddy PR #7545).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Plug in Caddy modules here.
	_ "github.com/caddy-dns/cloudflare"
	_ "github.com/mholt/caddy-ratelimit"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
