/**
 * npm run preflight -- --stack <name> [--stack-file <file>] [--cloudflare-api <url>] [--tailscale-api <url>] [--skip-ssh]
 *
 * Before a stack's first `pulumi up`: can the credentials the providers will use
 * (CLOUDFLARE_API_TOKEN, optionally TAILSCALE_API_KEY or an OAuth client) do what the
 * stack needs, and does each host's SSH address present the pinned host key? Reads
 * only; exit 0 when every check passed, 1 otherwise. The checks live in preflight/.
 */
import { main } from "../preflight/cli";

main(process.argv.slice(2)).then((code) => process.exit(code));
