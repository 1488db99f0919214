/**
 * The one remote command that deploys a pod: pure text builders, so tests can run the
 * exact shell locally as well as on real hosts.
 *
 * A pod changes as one unit, in one SSH session:
 *   1. stdin carries every file of the pod and every podman secret's value, one base64
 *      line each, in the order the script's header lists them (never on a command line);
 *   2. the service user is created if missing (with lingering, so its units run without a
 *      login);
 *   3. the files are written to a staging folder in the user's home (the same file system
 *      as their targets, so each final rename is atomic);
 *   4. they are validated together, as the pod will be: Quadlet's dry run and
 *      `systemd-analyze verify` over the staged unit folder, `caddy validate` on the
 *      staged Caddyfile in the pod's own Caddy image with the new token. On failure
 *      nothing is moved and `pulumi up` fails with the tool's message, naming the files
 *      by their installed paths;
 *   5. only then are the changed files renamed into place (the previous one kept as
 *      `<file>.edgeplane-prev`), units the pod no longer has removed, and changed
 *      secrets replaced;
 *   6. the pod restarts when what its containers read at start changed (units, a
 *      generated secret, the L7 credential) or it is not running; otherwise a changed
 *      Caddyfile or token is handed to the running Caddy by `caddy reload`, which keeps
 *      open connections. Nothing reads a pod's files between the renames and this step
 *      (systemd reads units at daemon-reload, Caddy its Caddyfile at start or reload),
 *      so no half-new pod is ever run.
 */
import { caddyModulesCheck, QUADLET, quadletFolderCheck, shQuote } from "../remote/script";

/** A file of the pod, below the service user's home. */
export interface DeployFile {
  readonly path: string;
  readonly mode: string;
  readonly sha256: string;
}

/** A podman secret of the pod; `reload` when the running Caddy takes a new value by reload. */
export interface DeploySecret {
  readonly name: string;
  readonly onChange: "restart" | "reload";
}

export interface PodDeploySpec {
  readonly service: string;
  /** The stack's name for the host (a key of edgeplane:hosts), recorded beside the pod. */
  readonly host: string;
  readonly user: string;
  readonly home: string;
  /** The service user's Quadlet folder (below `home`). */
  readonly unitDir: string;
  readonly caddyfile: string;
  /** In stdin order. */
  readonly files: readonly DeployFile[];
  /** In stdin order, after the files. */
  readonly secrets: readonly DeploySecret[];
  /** The podman secret whose value Caddy reads as CF_API_TOKEN, if any (one of `secrets`). */
  readonly tokenSecret?: string;
  /** The pod's Caddy image, which validates the candidate Caddyfile. */
  readonly caddyImage: string;
  /** Caddy modules the Caddyfile needs beyond the default image's, checked by name first. */
  readonly caddyModules: readonly string[];
  readonly podUnit: string;
  readonly caddyContainer: string;
  /** The `caddy …` words that reload the running Caddy from its mounted Caddyfile. */
  readonly reloadCaddy: string;
  /** Shell lines run as the service user before the pod (re)starts (folders it mounts). */
  readonly beforeStart: readonly string[];
  /** Where Quadlet lives on the host; tests point it elsewhere. */
  readonly quadlet?: string;
  /** The host's subordinate UID file; tests point it elsewhere. */
  readonly subuidFile?: string;
}

/**
 * Shell function: runs its arguments as the service user ($user, uid $uid), in its home,
 * with the environment systemd and podman expect of a logged-in user (lingering gives
 * it a runtime folder).
 */
const AS_USER = `as_user() { sudo -n -u "$user" env XDG_RUNTIME_DIR="/run/user/$uid" DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$uid/bus" sh -c 'cd && "$@"' edgeplane "$@"; }`;

/** In the service user's home: a restart or reload owed by a run that did not finish. */
export const PENDING = ".edgeplane-pending";

/** In the service user's home: the stack's name of the host the pod was deployed as. */
export const HOST_MARKER = ".edgeplane-host";

/** One base64 line per file, then one per secret: the command's stdin. */
export function deployBundle(files: readonly string[], secrets: readonly string[]): string {
  return [...files, ...secrets].map((v) => Buffer.from(v, "utf8").toString("base64") + "\n").join("");
}

function relativeToHome(spec: PodDeploySpec, file: string): string {
  if (!file.startsWith(`${spec.home}/`)) throw new Error(`internal: ${file} is not below ${spec.home}`);
  return file.slice(spec.home.length + 1);
}

export function podDeployScript(spec: PodDeploySpec): string {
  const q = shQuote;
  const unitRel = relativeToHome(spec, spec.unitDir);
  const isUnit = (f: DeployFile) => f.path.startsWith(`${spec.unitDir}/`);
  const token = spec.tokenSecret ? spec.secrets.findIndex((s) => s.name === spec.tokenSecret) : -1;
  if (spec.tokenSecret && token < 0) throw new Error(`internal: token secret ${spec.tokenSecret} is not a secret of the pod`);
  const tokenVar = token >= 0 ? `s${token}` : undefined;
  /** Runs shell `text` as the service user, with the candidate token (if any) on its stdin as $CF_API_TOKEN. */
  const withToken = (text: string) =>
    tokenVar
      ? `printf '%s' "$${tokenVar}" | base64 -d | as_user sh -c ${q(`CF_API_TOKEN=$(cat) && export CF_API_TOKEN && ${text}`)} edgeplane`
      : `as_user sh -c ${q(text)} edgeplane`;
  const caddyfileRel = relativeToHome(spec, spec.caddyfile);
  const lines = [
    `# edgeplane: deploy pod ${spec.service} as ${spec.user}, validated as a whole before anything changes`,
    ...spec.files.map((f) => `# file ${f.path} ${f.mode} sha256 ${f.sha256}`),
    ...spec.secrets.map(
      (s) =>
        `# secret ${s.name} (value on stdin only; a change ${s.onChange === "reload" ? "reloads Caddy" : "restarts the pod"})`,
    ),
    "set -eu",
    // Everything on stdin is read first, so no later command can consume it.
    ...spec.files.map((_, i) => `IFS= read -r f${i}`),
    ...spec.secrets.map((_, i) => `IFS= read -r s${i}`),
    `user=${q(spec.user)}`,
    `home=${q(spec.home)}`,
    // The user and its home stay when the pod goes: they hold Caddy's certificates and
    // ACME account (a podman volume); re-issuing on every re-creation hits CA rate limits.
    `if ! id -u "$user" >/dev/null 2>&1; then`,
    `  sudo -n mkdir -p "$(dirname "$home")"`,
    `  sudo -n useradd --create-home --home-dir "$home" --shell /usr/sbin/nologin --comment ${q(`edgeplane service ${spec.service}`)} "$user"`,
    "fi",
    `if ! grep -q "^$user:" ${q(spec.subuidFile ?? "/etc/subuid")}; then`,
    `  echo "edgeplane: $user has no subordinate UIDs in /etc/subuid; rootless podman needs them (usermod --add-subuids)" >&2`,
    "  exit 1",
    "fi",
    `sudo -n loginctl enable-linger "$user"`,
    `uid=$(id -u "$user")`,
    // Lingering starts the user's manager asynchronously; podman and systemctl --user need it (and its runtime folder) now.
    `sudo -n systemctl start "user@$uid.service"`,
    AS_USER,
    // Writes a line ($2) to a file ($1) in the service user's home, as that user.
    `note() { printf '%s\\n' "$2" | as_user sh -c 'cat >"$1"' edgeplane "$home/$1"; }`,
    `stage=$(as_user mktemp -d "$home/.edgeplane-stage.XXXXXXXX")`,
    `trap 'as_user rm -rf "$stage"' EXIT`,
    `put() { as_user mkdir -p "$(dirname "$stage/$2")" && printf '%s' "$1" | base64 -d | as_user sh -c 'cat >"$1" && chmod "$2" "$1"' edgeplane "$stage/$2" "$3"; }`,
    ...spec.files.map((f, i) => `put "$f${i}" ${q(relativeToHome(spec, f.path))} ${f.mode}`),
    `as_user mkdir -p "$stage/${unitRel}"`,
    // A malformed token is quoted by the DNS module's own messages: never print it.
    ...(tokenVar
      ? [
          `redact() { T=$(printf '%s' "$${tokenVar}" | base64 -d) awk 'BEGIN { t = ENVIRON["T"] } { while (t != "" && (i = index($0, t)) > 0) $0 = substr($0, 1, i - 1) "[token]" substr($0, i + length(t)); print }'; }`,
        ]
      : [`redact() { cat; }`]),
    // Tool messages name the staged files: show them by the paths they are installed at.
    `fail() { printf 'edgeplane: %s failed validation; nothing of pod ${spec.service} changed:\\n' "$1" >&2; printf '%s\\n' "$2" | sed "s|$stage/|$home/|g" >&2; exit 1; }`,
    `if ! problems=$(as_user sh -c ${q(quadletFolderCheck(spec.quadlet ?? QUADLET))} edgeplane "$stage/${unitRel}" 2>&1); then fail ${q(spec.unitDir)} "$problems"; fi`,
    `if ! problems=$(${withToken(caddyValidation(spec, tokenVar !== undefined))} "$stage/${caddyfileRel}" 2>&1); then`,
    `  fail ${q(spec.caddyfile)} "$(printf '%s\\n' "$problems" | redact)"`,
    "fi",
    "units_changed=0; caddyfile_changed=0; restart=0; reload=0",
    // A restart or reload a previous run owed and did not finish (the session dropped, a
    // reload failed) is owed still: the files it was for are already in place, so this
    // run would otherwise find nothing to do.
    `case "$(as_user cat "$home/${PENDING}" 2>/dev/null || true)" in restart) restart=1 ;; reload) reload=1 ;; esac`,
    // Swap: only what differs, the previous version kept for a manual rollback.
    `swap() { if ! as_user cmp -s "$stage/$1" "$home/$1"; then as_user mkdir -p "$(dirname "$home/$1")"; if as_user test -e "$home/$1"; then as_user cp -p "$home/$1" "$home/$1.edgeplane-prev"; fi; as_user mv -f "$stage/$1" "$home/$1"; eval "$2=1"; fi; }`,
    ...spec.files.map((f) => `swap ${q(relativeToHome(spec, f.path))} ${isUnit(f) ? "units_changed" : "caddyfile_changed"}`),
    // Units of this pod that the new config no longer has.
    `for f in "$home/${unitRel}"/*.pod "$home/${unitRel}"/*.container "$home/${unitRel}"/*.volume "$home/${unitRel}"/*.network; do`,
    `  [ -f "$f" ] || continue`,
    `  case "\${f##*/}" in ${
      spec.files
        .filter(isUnit)
        .map((f) => q(f.path.slice(f.path.lastIndexOf("/") + 1)))
        .join("|") || "''"
    }) ;; *) as_user rm -f "$f"; units_changed=1 ;; esac`,
    "done",
    // Which of the stack's hosts this pod belongs to: a removal meant for another host
    // name (the pod moved, or the host was renamed) leaves it alone.
    `note ${HOST_MARKER} ${q(spec.host)}`,
    // Secrets: replaced only when the value differs; its effect decides restart or reload.
    // (The comparison is of the values as $(…) gives them, without trailing newlines, which
    // no generated value has; the new value is stored byte for byte, straight from stdin.)
    // `--replace` only for a secret that exists (containers/podman#21952: with none, some
    // versions refuse it).
    `secret() { new=$(printf '%s' "$2" | base64 -d); if old=$(as_user podman secret inspect --showsecret --format '{{.SecretData}}' "$1" 2>/dev/null); then replace=--replace; else old=; replace=; fi; if [ "$new" != "$old" ]; then printf '%s' "$2" | base64 -d | as_user podman secret create $replace "$1" - >/dev/null; eval "$3=1"; fi; }`,
    ...spec.secrets.map((s, i) => `secret ${q(s.name)} "$s${i}" ${s.onChange}`),
    `for name in $(as_user podman secret ls --format '{{.Name}}'); do`,
    `  case "$name" in ${spec.secrets.map((s) => q(s.name)).join("|") || "''"}) ;; *) as_user podman secret rm "$name" >/dev/null; restart=1 ;; esac`,
    "done",
    // A pod (or its Caddy) that is not running restarts: it then reads every file and secret.
    `if [ "$units_changed$restart" != 00 ] || ! as_user systemctl --user is-active --quiet ${q(spec.podUnit)} ${q(`${spec.caddyContainer}.service`)}; then`,
    `  note ${PENDING} restart`,
    ...spec.beforeStart.map((l) => `  as_user sh -c ${q(l)}`),
    `  as_user systemctl --user daemon-reload`,
    `  as_user systemctl --user restart ${q(spec.podUnit)}`,
    `  echo "edgeplane: pod ${spec.service} restarted"`,
    `elif [ "$caddyfile_changed$reload" != 00 ]; then`,
    `  note ${PENDING} reload`,
    `  if ! problems=$(${withToken(`exec podman exec${tokenVar ? " --env CF_API_TOKEN" : ""} ${q(spec.caddyContainer)} ${spec.reloadCaddy}`)} 2>&1); then`,
    `    printf 'edgeplane: Caddy of pod ${spec.service} refused the new config; the pod keeps running the previous one until the next pulumi up:\n%s\n' "$(printf '%s\n' "$problems" | redact)" >&2`,
    "    exit 1",
    "  fi",
    `  echo "edgeplane: Caddy of pod ${spec.service} reloaded"`,
    "fi",
    `as_user rm -f "$home/${PENDING}"`,
  ];
  return lines.join("\n") + "\n";
}

/**
 * Removes a pod: stops it, removes its units, Caddyfile and secrets, and ends lingering.
 * The user and its home stay, with the certificate volume (`userdel -r` removes them).
 */
export function podRemoveScript(
  spec: Pick<PodDeploySpec, "service" | "host" | "user" | "home" | "files" | "secrets" | "podUnit">,
): string {
  const q = shQuote;
  const paths = spec.files.flatMap((f) => [q(f.path), q(`${f.path}.edgeplane-prev`)]);
  return (
    [
      `# edgeplane: remove pod ${spec.service} (its user and home stay, with the certificate volume)`,
      "set -eu",
      // The provider sends the create's stdin (the pod's files and secrets) to the delete
      // too; a command that exits before reading it fails with EOF (x/crypto/ssh
      // Session.Wait returns the stdin copy's error). Read it all first, and drop it.
      "cat >/dev/null",
      `user=${q(spec.user)}`,
      `home=${q(spec.home)}`,
      `id -u "$user" >/dev/null 2>&1 || exit 0`,
      // A pod moved to another host is created there before it is removed here; if both
      // names are this machine, the pod now belongs to the new one: keep it.
      `owner=$(sudo -n cat "$home/${HOST_MARKER}" 2>/dev/null) || owner=${q(spec.host)}`,
      `if [ "$owner" != ${q(spec.host)} ]; then echo "edgeplane: pod ${spec.service} here now belongs to host $owner; left in place"; exit 0; fi`,
      `uid=$(id -u "$user")`,
      AS_USER,
      // Each step fails the removal unless what it removes is gone anyway.
      `as_user systemctl --user stop ${q(spec.podUnit)} || ! as_user systemctl --user is-active --quiet ${q(spec.podUnit)}`,
      `sudo -n rm -f ${paths.join(" ")} "$home/${PENDING}"`,
      // Without a user manager (lingering already off) there is nothing to reload.
      `as_user systemctl --user daemon-reload || ! as_user systemctl --user is-system-running >/dev/null 2>&1`,
      ...spec.secrets.map(
        (s) =>
          `as_user podman secret rm ${q(s.name)} >/dev/null 2>&1 || ! as_user podman secret inspect ${q(s.name)} >/dev/null 2>&1`,
      ),
      // Last: ending lingering stops the user's manager and removes its runtime folder.
      `sudo -n loginctl disable-linger "$user"`,
    ].join("\n") + "\n"
  );
}

/**
 * `caddy validate` of the Caddyfile at "$1" in the pod's own Caddy image, with no
 * network, after checking by name that the image has the modules the Caddyfile needs
 * (`caddy validate` alone would only say "unrecognized directive"). Validation
 * provisions the DNS module, which checks the token's format: the candidate token is
 * given to it as the container will get it, from the environment, never an argument.
 */
function caddyValidation(spec: PodDeploySpec, withToken: boolean): string {
  const image = shQuote(spec.caddyImage);
  const modules =
    spec.caddyModules.length > 0
      ? `${caddyModulesCheck(`podman run --rm --network none ${image} caddy`, spec.caddyImage, spec.caddyModules)} && `
      : "";
  return (
    modules +
    `exec podman run --rm --network none${withToken ? " --env CF_API_TOKEN" : ""} -v "$1":/etc/caddy/Caddyfile:ro,Z ${image} ` +
    `caddy validate --adapter caddyfile --config /etc/caddy/Caddyfile`
  );
}
