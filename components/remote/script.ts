/**
 * The shell that installs and removes files on a host. Pure text builders: the
 * RemoteFile component sends their output as a remote command, and tests run the same
 * text locally against fake `sudo` and validators.
 *
 * Install protocol (validated with the real tool on the host, then moved into place):
 *   1. content arrives on stdin (never on the command line, never echoed);
 *   2. it is written to a temporary file in the target's own directory, so the final
 *      rename is atomic (same filesystem) and a reader never sees half a file;
 *   3. owner and mode are set on the temporary file;
 *   4. the validator, if any, runs against the temporary file; on failure the
 *      temporary file is removed, the installed file is untouched, and the command
 *      fails with the validator's own message;
 *   5. an unchanged file is left alone (no rename, so no watcher or reload fires);
 *   6. otherwise the previous file is kept as `<path>.edgeplane-prev` for rollback and
 *      the new one is renamed over it.
 */

/** Quotes a value for POSIX sh: safe for any byte except NUL. */
export function shQuote(value: string): string {
  if (value.includes("\0")) throw new Error("shell values cannot contain NUL");
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface InstallSpec {
  /** Absolute path on the host. */
  readonly path: string;
  /** Owner user (and group of the same name). */
  readonly owner: string;
  /** Octal mode such as "0644". */
  readonly mode: string;
  /**
   * A shell command that checks the candidate file, whose path is in "$candidate".
   * It runs as the SSH user (prefix `sudo -n` where needed) and must exit non-zero
   * with a message on stderr when the file is invalid.
   */
  readonly validate?: string;
  /** Shown in the first line of the script so `pulumi preview` says what changes. */
  readonly description: string;
  /** sha256 of the content, shown in the script so a content change is visible in the diff. */
  readonly sha256?: string;
}

/** Creates a directory as `owner` so every created level belongs to it, not only the last. */
function mkdirAs(owner: string): string {
  return owner === "root" ? `sudo -n mkdir -p "$dir"` : `sudo -n -u ${shQuote(owner)} mkdir -p "$dir"`;
}

export function installScript(spec: InstallSpec): string {
  if (!spec.path.startsWith("/")) throw new Error(`install path must be absolute: ${spec.path}`);
  if (!/^0[0-7]{3}$/.test(spec.mode)) throw new Error(`mode must be octal like 0644: ${spec.mode}`);
  const lines = [
    `# edgeplane: install ${spec.description}${spec.sha256 ? ` (sha256 ${spec.sha256})` : ""}`,
    "set -eu",
    `target=${shQuote(spec.path)}`,
    `dir=$(dirname "$target")`,
    mkdirAs(spec.owner),
    `candidate=$(sudo -n mktemp "$dir/.edgeplane.XXXXXXXX")`,
    `trap 'sudo -n rm -f "$candidate"' EXIT`,
    `sudo -n tee "$candidate" >/dev/null`,
    `sudo -n chown ${shQuote(`${spec.owner}:${spec.owner}`)} "$candidate"`,
    `sudo -n chmod ${spec.mode} "$candidate"`,
  ];
  if (spec.validate) {
    lines.push(
      `if ! validation=$( { ${spec.validate} ; } 2>&1 ); then`,
      `  printf 'edgeplane: %s failed validation; the installed file is unchanged:\\n%s\\n' "$target" "$validation" >&2`,
      "  exit 1",
      "fi",
    );
  }
  lines.push(
    `if sudo -n cmp -s "$candidate" "$target"; then exit 0; fi`,
    `if sudo -n test -e "$target"; then sudo -n cp -p "$target" "$target.edgeplane-prev"; fi`,
    `sudo -n mv -f "$candidate" "$target"`,
  );
  return lines.join("\n") + "\n";
}

export function removeScript(spec: Pick<InstallSpec, "path" | "description">): string {
  return (
    [
      `# edgeplane: remove ${spec.description}`,
      "set -eu",
      // The command provider runs a delete with the create's stdin (the file's content),
      // and its SSH client fails a command that exits before that stdin is written with
      // a bare `EOF` (golang.org/x/crypto/ssh session.go, Session.Wait returns the stdin
      // copy's error). Read it all first.
      "cat >/dev/null",
      `sudo -n rm -f ${shQuote(spec.path)} ${shQuote(`${spec.path}.edgeplane-prev`)}`,
    ].join("\n") + "\n"
  );
}

/**
 * Runs `script` as a rootless service user with the environment systemd and podman
 * expect of a logged-in user (lingering gives the user a runtime directory).
 * `args` are shell words of the calling shell (such as `"$candidate"`), seen by
 * `script` as $1, $2, ….
 */
export function asServiceUser(user: string, script: string, args: readonly string[] = []): string {
  const u = shQuote(user);
  return (
    `sudo -n -u ${u} env XDG_RUNTIME_DIR="/run/user/$(id -u ${u})" ` +
    `DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$(id -u ${u})/bus" ` +
    `sh -c ${shQuote(`cd && ${script}`)} edgeplane${args.map((a) => ` ${a}`).join("")}`
  );
}

/** Where distributions install podman's Quadlet generator. */
export const QUADLET = "/usr/libexec/podman/quadlet";

/** systemd's own check of unit files, as shipped with systemd. */
export const SYSTEMD_ANALYZE = "systemd-analyze";

/**
 * Validator for a Quadlet unit: Quadlet's dry run over a scratch copy of the unit's
 * folder in which the candidate takes the unit's place, so references to sibling
 * units (`Pod=x.pod`, `Volume=x.volume`) resolve as they will after the install; then
 * the services Quadlet generates from that folder go through `systemd-analyze verify`,
 * which catches what Quadlet passes on but systemd refuses to load (a lone `;` in
 * ExecStart= is a command separator, and a second command is refused for Type=notify;
 * an unbalanced quote; an unknown `%` specifier). Quadlet writes ExecStart= with
 * `$PODMAN` when set, /usr/bin/podman otherwise. `user` runs it as that service user
 * (`quadlet -user`); otherwise as root.
 */
export function quadletValidator(unitName: string, user?: string, quadlet: string = QUADLET): string {
  const mode = user ? " -user" : "";
  const check =
    `scratch=$(mktemp -d) && ` +
    `for f in "$2"/*.pod "$2"/*.container "$2"/*.volume "$2"/*.network; do if [ -f "$f" ]; then cp "$f" "$scratch"/; fi; done && ` +
    `cp "$1" "$scratch/$3" && ` +
    `sh -c ${shQuote(quadletFolderCheck(quadlet, mode))} edgeplane "$scratch"; ` +
    `status=$?; rm -rf "$scratch"; exit $status`;
  const args = ['"$candidate"', '"$dir"', shQuote(unitName)];
  return user ? asServiceUser(user, check, args) : `sudo -n sh -c ${shQuote(check)} edgeplane ${args.join(" ")}`;
}

/**
 * Shell text (for `sh -c TEXT edgeplane FOLDER`) that checks a whole Quadlet folder as
 * it will be installed: Quadlet's dry run, then `systemd-analyze verify` over the
 * services Quadlet generates from it. Rootless (`-user`) unless `mode` is "".
 */
export function quadletFolderCheck(quadlet: string = QUADLET, mode: " -user" | "" = " -user"): string {
  return (
    `QUADLET_UNIT_DIRS="$1" ${shQuote(quadlet)} -dryrun${mode} >/dev/null && ` +
    `generated=$(mktemp -d) && ` +
    `{ QUADLET_UNIT_DIRS="$1" ${shQuote(quadlet)}${mode} "$generated" >/dev/null 2>&1 && ` +
    `${SYSTEMD_ANALYZE} verify --man=no --generators=no "$generated"/*.service >/dev/null; }; ` +
    `status=$?; rm -rf "$generated"; exit $status`
  );
}

/**
 * Shell text that fails, naming each one, when the Caddy that `caddy` runs (shell words,
 * such as `podman run … IMAGE caddy`) lacks one of `modules` (Caddy module IDs such as
 * http.handlers.rate_limit), as `caddy list-modules` reports them. `caddy validate`
 * alone would only say "unrecognized directive", naming neither the module nor the image.
 */
export function caddyModulesCheck(caddy: string, image: string, modules: readonly string[]): string {
  const missing =
    `edgeplane: the Caddyfile needs the Caddy module %s, which the image %s does not have; ` +
    `set images.caddy to an image built with it (docs/security.md, "Sidecar image")\\n`;
  return (
    `modules=$(${caddy} list-modules) && ` +
    `for module in ${modules.map(shQuote).join(" ")}; do ` +
    `printf '%s\\n' "$modules" | grep -qxF "$module" || { printf ${shQuote(missing)} "$module" ${shQuote(image)} >&2; exit 1; }; ` +
    `done`
  );
}
