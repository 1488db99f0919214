/**
 * The ingress host's `/etc/hosts` block: every name the platform serves resolves to
 * the ingress's tailnet address, where Envoy has a filter chain for each of them
 * (public chains are copied there too). Processes on the host, and calls between
 * services (forward auth to Authentik), then stay on the machine instead of going out
 * to the public address and back. Pods get the same mapping as added hosts.
 */
import { ingressHost } from "../../model/topology";
import type { Model } from "../../model/types";
import { shQuote } from "../remote/script";

/** Where the rendered block is installed; the splice copies it into /etc/hosts. */
export const HOSTS_BLOCK_PATH = "/etc/edgeplane/hosts";
export const BEGIN_MARKER = "# BEGIN edgeplane (managed; edit the stack config, not these lines)";
export const END_MARKER = "# END edgeplane";

/** The block's lines, one name per line, sorted so the bytes depend only on the names. */
export function renderHostsBlock(model: Model): string {
  const address = ingressHost(model).tailnetIP;
  const names = [...new Set(model.services.map((s) => s.fqdn))].sort();
  return [
    "# managed by edgeplane: names this platform serves, at the ingress's tailnet address (Envoy)",
    ...names.map((name) => `${address}\t${name}`),
    "",
  ].join("\n");
}

/**
 * Replaces the marked block in `hostsFile` with the contents of `blockFile` (or removes
 * it when `blockFile` is null), leaving every other line as it was. The new file is
 * written beside the old one and moved into place, so a reader never sees half a file;
 * nothing is written when the result is unchanged.
 */
export function spliceHostsScript(hostsFile: string, blockFile: string | null): string {
  const hosts = shQuote(hostsFile);
  const strip = `sed ${shQuote(`/^${escapeSed(BEGIN_MARKER)}$/,/^${escapeSed(END_MARKER)}$/d`)} ${hosts}`;
  const append = blockFile ? `{ echo ${shQuote(BEGIN_MARKER)}; cat ${shQuote(blockFile)}; echo ${shQuote(END_MARKER)}; }` : ":";
  return [
    "set -eu",
    `tmp=$(sudo -n mktemp ${shQuote(`${hostsFile}.edgeplane.XXXXXX`)})`,
    `trap 'sudo -n rm -f "$tmp"' EXIT`,
    `sudo -n sh -c ${shQuote(`{ ${strip}; ${append}; } > "$1"`)} edgeplane "$tmp"`,
    `if sudo -n cmp -s "$tmp" ${hosts}; then exit 0; fi`,
    `sudo -n chmod 0644 "$tmp"`,
    `sudo -n mv -f "$tmp" ${hosts}`,
    "trap - EXIT",
    "",
  ].join("\n");
}

function escapeSed(text: string): string {
  // Basic regular expressions: these are special; ( ) { } + ? are literal unless escaped.
  return text.replace(/[\\/.*[\]^$]/g, (c) => `\\${c}`);
}
