/**
 * Throwaway Linux hosts for the end-to-end tests: each a Debian trixie machine
 * (systemd 257, podman 5.4 with Quadlet, crun, pasta, sshd) booted with
 * systemd-nspawn from a fresh overlay over the root filesystem that
 * scripts/build-test-host.sh caches, on its own network namespace.
 *
 * Network, per run ("slot" N, so runs side by side never share names or addresses):
 * each host is a namespace `epN-<name>` with two interfaces, as a real host has:
 * `eth0` with its "public" address 198.18.N.<i+1> and the default route, on bridge
 * `epbN` (198.18.N.254 in this machine's root namespace), and `tailscale0` with its
 * tailnet (and SSH) address 100.77.N.<i+1>, on bridge `eptN` (100.77.N.254). Keeping
 * the tailnet address off the default-route interface matters: pasta copies that
 * interface's address into each pod. Nothing is routed anywhere else.
 *
 * What each host gets before it boots, besides its copy of the root filesystem:
 *  - what the README's "Preparing a host" asks an operator to prepare: a `deploy`
 *    user with passwordless sudo and the run's SSH key;
 *  - what only this sandbox needs (never part of edgeplane's rendered files): the
 *    three containers.conf settings nspawn requires (default_sysctls = [], keyring =
 *    false, pids_limit = 0), network-online.target enabled, and a registry on
 *    127.0.0.1:5000 (tools/cmd/test-registry) serving the test images, since no
 *    public registry can be reached; podman treats it as an insecure registry.
 *
 * Everything is torn down by stop(), and whatever an earlier run left behind (it
 * crashed, or was killed) is removed before a slot is reused: each slot is held by a
 * `flock` child whose lock dies with this process.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const REPO = path.join(__dirname, "..", "..");
const RUN_DIR = "/run/edgeplane-test-hosts";
const WORK_DIR = "/var/tmp/edgeplane-test-hosts";
const SLOTS = 16;
const DEPLOY_USER = "deploy";

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface TestHost {
  readonly name: string;
  /** The host's address on the test network: its SSH and tailnet address. */
  readonly address: string;
  /** A second address, standing in for the host's public one. */
  readonly publicAddress: string;
  readonly sshPort: number;
  /** The SSH host public key (`ssh-ed25519 AAAA…`), for pinning. */
  readonly hostKey: string;
  /** The network namespace the host runs in (`/run/netns/<name>`). */
  readonly netns: string;
  /** Runs `sh -c command` inside the host (all its namespaces), as root: for test inspection only. */
  exec(command: string, opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Like exec, but throws with the output unless the command exits 0; returns stdout. */
  run(command: string, opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** Reboots the machine (systemd inside shuts down; the same file system boots again). */
  reboot(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestHosts {
  readonly hosts: Record<string, TestHost>;
  /** The deploy user's SSH private key (OpenSSH format). */
  readonly privateKey: string;
  readonly user: string;
  /** This machine's address on the test network (the source of connections from the tests). */
  readonly gateway: string;
  stop(): Promise<void>;
}

/** An image the in-host registry serves (see tools/cmd/test-registry). */
export interface ImageSpec {
  readonly name: string;
  readonly tags: readonly string[];
  readonly config: Record<string, unknown>;
  readonly files: readonly (
    | { path: string; source: string; mode: number }
    | { path: string; content: string; mode: number }
    | { path: string; dir: true; mode: number }
  )[];
}

export interface StartOptions {
  /** Images the in-host registry serves; `source` paths are files on this machine. */
  readonly images?: readonly ImageSpec[];
  /** The test-registry binary (tools/cmd/test-registry). */
  readonly registry?: string;
}

/** What must exist for startHosts; each missing item, with how to get it. */
export function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push("root (the tests boot machines with systemd-nspawn)");
  for (const [tool, pkg] of [
    ["systemd-nspawn", "systemd-container"],
    ["debootstrap", "debootstrap"],
    ["nsenter", "util-linux"],
    ["ip", "iproute2"],
    ["ssh-keygen", "openssh-client"],
    ["flock", "util-linux"],
  ] as const) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) missing.push(`${tool} (apt-get install -y ${pkg})`);
  }
  return missing;
}

function sh(command: string, opts: { input?: string; allowFail?: boolean } = {}): string {
  const r = spawnSync("sh", ["-c", command], { input: opts.input ?? "", encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`command failed (${r.status}): ${command}\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The cached root filesystem, built on first use (about 2–4 minutes) by scripts/build-test-host.sh. */
export function cachedRootfs(): string {
  const r = spawnSync("bash", [path.join(REPO, "scripts", "build-test-host.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.status !== 0) throw new Error(`scripts/build-test-host.sh failed (${r.status})`);
  return r.stdout.trim().split("\n").pop()!;
}

/** Takes a free slot: a `flock` child holds its lock until this process exits, however it exits. */
async function takeSlot(): Promise<{ slot: number; holder: ChildProcess }> {
  fs.mkdirSync(RUN_DIR, { recursive: true });
  for (let slot = 0; slot < SLOTS; slot++) {
    const holder = spawn("flock", ["-n", path.join(RUN_DIR, `slot-${slot}.lock`), "-c", "echo locked; exec cat >/dev/null"], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    const locked = await new Promise<boolean>((resolve) => {
      holder.stdout!.once("data", () => resolve(true));
      holder.once("exit", () => resolve(false));
    });
    if (locked) {
      holder.unref();
      (holder.stdout as unknown as { unref?: () => void }).unref?.();
      (holder.stdin as unknown as { unref?: () => void }).unref?.();
      return { slot, holder };
    }
  }
  throw new Error(`all ${SLOTS} test-host slots are busy (${RUN_DIR})`);
}

const prefix = (slot: number) => `ep${slot}-`;

/** Removes everything a run in this slot may have left: machines, mounts, namespaces, links, files. */
function cleanSlot(slot: number): void {
  const dir = path.join(RUN_DIR, `slot-${slot}`);
  if (fs.existsSync(dir)) {
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".pid"))) {
      const pid = Number(fs.readFileSync(path.join(dir, f), "utf8"));
      killMachine(pid);
    }
  }
  const work = path.join(WORK_DIR, `slot-${slot}`);
  const mounts = fs
    .readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(work + "/"))
    .sort()
    .reverse();
  for (const m of mounts) sh(`umount -l ${q(m)}`, { allowFail: true });
  for (const ns of sh("ip netns list", { allowFail: true }).split("\n")) {
    const name = ns.split(" ")[0] ?? "";
    if (name.startsWith(prefix(slot))) sh(`ip netns del ${q(name)}`, { allowFail: true });
  }
  sh(`ip link del epb${slot} 2>/dev/null; ip link del ept${slot} 2>/dev/null`, { allowFail: true });
  for (const link of sh("ip -o link show", { allowFail: true }).split("\n")) {
    const name = link.split(": ")[1]?.split("@")[0] ?? "";
    if (name.startsWith(`ep${slot}h`) || name.startsWith(`ep${slot}t`)) sh(`ip link del ${q(name)}`, { allowFail: true });
  }
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Stops an nspawn process (it shuts its machine down on SIGTERM) and, failing that, kills it. */
function killMachine(pid: number): void {
  if (!pid || !isNspawn(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && isNspawn(pid)) spawnSync("sleep", ["0.2"]);
  if (isNspawn(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}

function isNspawn(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("systemd-nspawn");
  } catch {
    return false;
  }
}

/** Leftovers of every slot not held by a live run. */
function cleanAbandonedSlots(): void {
  for (let slot = 0; slot < SLOTS; slot++) {
    const lock = path.join(RUN_DIR, `slot-${slot}.lock`);
    if (!fs.existsSync(path.join(RUN_DIR, `slot-${slot}`)) && !fs.existsSync(path.join(WORK_DIR, `slot-${slot}`))) continue;
    if (spawnSync("flock", ["-n", lock, "true"]).status === 0) cleanSlot(slot);
  }
}

/** The containers.conf settings systemd-nspawn on this kind of machine needs; a real host does not. */
const SANDBOX_CONTAINERS_CONF = `# edgeplane test harness only (systemd-nspawn sandbox), never on a real host:
[containers]
# /proc/sys is read-only inside nspawn.
default_sysctls = []
# nspawn's seccomp filter refuses new session keyrings.
keyring = false
# no pids controller in nspawn's cgroup.
pids_limit = 0
`;

const REGISTRY_CONF = `# edgeplane test harness only: the test images' registry on this host's loopback.
[[registry]]
location = "localhost:5000"
insecure = true
`;

const REGISTRY_UNIT = `[Unit]
Description=edgeplane test image registry (test harness only)
Before=user@.service
[Service]
ExecStart=/opt/edgeplane-test/bin/test-registry -listen 127.0.0.1:5000 -spec /opt/edgeplane-test/images.json
Restart=always
[Install]
WantedBy=multi-user.target
`;

/**
 * podman's overlay storage driver cannot stack on overlayfs (the machine's root), so
 * the folders container storage lives in are plain directories bound in: rootful
 * podman's, and the service users' homes (edgeplane puts them under /var/lib/edgeplane).
 */
const STORAGE_DIRS = ["/var/lib/containers", "/var/lib/edgeplane"];

interface Machine {
  pid: number;
  leader: number;
  proc: ChildProcess;
  exited: Promise<number | null>;
}

export async function startHosts(names: readonly string[], opts: StartOptions = {}): Promise<TestHosts> {
  const missing = missingPrerequisites();
  if (missing.length > 0) throw new Error(`test hosts need: ${missing.join("; ")}`);
  const rootfs = cachedRootfs();
  cleanAbandonedSlots();
  const { slot, holder } = await takeSlot();
  cleanSlot(slot);
  const runDir = path.join(RUN_DIR, `slot-${slot}`);
  const work = path.join(WORK_DIR, `slot-${slot}`);
  fs.mkdirSync(runDir, { recursive: true });
  fs.mkdirSync(work, { recursive: true });

  const stopAll = async () => {
    await Promise.all(Object.values(hosts).map((h) => h.stop().catch(() => undefined)));
    cleanSlot(slot);
    holder.stdin?.end();
    holder.kill();
  };
  const hosts: Record<string, TestHost> = {};
  try {
    const bridge = `epb${slot}`;
    const tailnetBridge = `ept${slot}`;
    const gateway = `100.77.${slot}.254`;
    sh(
      `ip link add ${bridge} type bridge && ip addr add 198.18.${slot}.254/24 dev ${bridge} && ip link set ${bridge} up && ` +
        `ip link add ${tailnetBridge} type bridge && ip addr add ${gateway}/24 dev ${tailnetBridge} && ip link set ${tailnetBridge} up`,
    );
    const keyDir = path.join(work, "ssh");
    fs.mkdirSync(keyDir, { recursive: true });
    sh(`ssh-keygen -q -t ed25519 -N '' -C edgeplane-e2e -f ${q(path.join(keyDir, "id_ed25519"))}`);
    const privateKey = fs.readFileSync(path.join(keyDir, "id_ed25519"), "utf8");
    const publicKey = fs.readFileSync(path.join(keyDir, "id_ed25519.pub"), "utf8");

    await Promise.all(
      names.map(async (name, i) => {
        hosts[name] = await startHost({ name, index: i, slot, rootfs, work, runDir, bridge, tailnetBridge, publicKey, opts });
      }),
    );
    return { hosts, privateKey, user: DEPLOY_USER, gateway, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

interface HostParams {
  name: string;
  index: number;
  slot: number;
  rootfs: string;
  work: string;
  runDir: string;
  bridge: string;
  tailnetBridge: string;
  publicKey: string;
  opts: StartOptions;
}

async function startHost(p: HostParams): Promise<TestHost> {
  const machine = `${prefix(p.slot)}${p.name}`;
  const address = `100.77.${p.slot}.${p.index + 1}`;
  const publicAddress = `198.18.${p.slot}.${p.index + 1}`;
  const dir = path.join(p.work, p.name);
  const merged = path.join(dir, "merged");
  for (const d of ["upper", "work", "merged", ...STORAGE_DIRS.map((_, i) => `storage-${i}`)]) {
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  }
  sh(`mount -t overlay overlay -o ${q(`lowerdir=${p.rootfs},upperdir=${dir}/upper,workdir=${dir}/work`)} ${q(merged)}`);

  // Network: a namespace of its own, a veth onto each of the run's bridges.
  const hostSide = `ep${p.slot}h${p.index}`;
  const tailnetSide = `ep${p.slot}t${p.index}`;
  sh(
    [
      `ip netns add ${machine}`,
      `ip link add ${hostSide} type veth peer name eth0 netns ${machine}`,
      `ip link set ${hostSide} master ${p.bridge} up`,
      `ip link add ${tailnetSide} type veth peer name tailscale0 netns ${machine}`,
      `ip link set ${tailnetSide} master ${p.tailnetBridge} up`,
      `ip -n ${machine} link set lo up`,
      `ip -n ${machine} link set eth0 up`,
      `ip -n ${machine} link set tailscale0 up`,
      `ip -n ${machine} addr add ${publicAddress}/24 dev eth0`,
      `ip -n ${machine} addr add ${address}/24 dev tailscale0`,
      // pasta needs a default route to pick the interface it copies.
      `ip -n ${machine} route add default via 198.18.${p.slot}.254`,
    ].join(" && "),
  );

  prepareRoot(merged, p.name, p.publicKey, p.opts);
  const hostKey = fs
    .readFileSync(path.join(merged, "etc/ssh/ssh_host_ed25519_key.pub"), "utf8")
    .trim()
    .split(" ")
    .slice(0, 2)
    .join(" ");

  const log = path.join(p.runDir, `${p.name}.log`);
  const boot = async (): Promise<Machine> => {
    const out = fs.openSync(log, "a");
    const proc = spawn(
      "systemd-nspawn",
      [
        "-b",
        "-D",
        merged,
        "-M",
        machine,
        "--register=no",
        "--keep-unit",
        "--console=read-only",
        `--network-namespace-path=/run/netns/${machine}`,
        // Rootful podman (Envoy) attaches a BPF device filter to each container's cgroup.
        ...STORAGE_DIRS.map((inHost, i) => `--bind=${dir}/storage-${i}:${inHost}`),
        "--capability=CAP_BPF,CAP_NET_ADMIN",
        "--system-call-filter=bpf",
      ],
      { env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1" }, stdio: ["ignore", out, out], detached: true },
    );
    fs.closeSync(out);
    proc.unref();
    fs.writeFileSync(path.join(p.runDir, `${p.name}.pid`), String(proc.pid));
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    const leader = await waitFor(`${p.name}: systemd inside nspawn`, 30_000, () => systemdChild(proc.pid!), exited, log);
    const m: Machine = { pid: proc.pid!, leader, proc, exited };
    await waitFor(
      `${p.name}: boot to running`,
      120_000,
      async () => {
        const r = await nsExec(leader, "systemctl is-system-running");
        return ["running", "degraded"].includes(r.stdout.trim()) ? true : undefined;
      },
      exited,
      log,
    );
    await waitFor(`${p.name}: sshd on ${address}:22`, 30_000, () => tcpOpen(address, 22), exited, log);
    return m;
  };

  let m = await boot();
  let stopped = false;
  const host: TestHost = {
    name: p.name,
    address,
    publicAddress,
    sshPort: 22,
    hostKey,
    netns: machine,
    exec: (command, o) => nsExec(m.leader, command, o),
    async run(command, o) {
      const r = await nsExec(m.leader, command, o);
      if (r.code !== 0) throw new Error(`on ${p.name}: ${command}: exit ${r.code}\n${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    async reboot() {
      await nsExec(m.leader, "systemctl reboot");
      const code = await Promise.race([m.exited, sleep(120_000).then(() => "timeout" as const)]);
      if (code === "timeout") throw new Error(`${p.name} did not shut down for a reboot within 120 s (see ${log})`);
      m = await boot();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      killMachine(m.pid);
      await Promise.race([m.exited, sleep(2000)]);
      sh(`umount ${q(merged)} || umount -l ${q(merged)}`, { allowFail: true });
      sh(`ip netns del ${machine}`, { allowFail: true });
      sh(`ip link del ${hostSide}`, { allowFail: true });
      sh(`ip link del ${tailnetSide}`, { allowFail: true });
      // A machine killed with many pods may still have its last processes writing into
      // container storage for a moment (ENOTEMPTY): retried, as rmSync allows.
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 500 });
    },
  };
  return host;
}

/** Writes what the host gets before it boots (see the file comment). */
function prepareRoot(root: string, name: string, publicKey: string, opts: StartOptions): void {
  const write = (file: string, content: string, mode = 0o644) => {
    const target = path.join(root, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, content, { mode });
    fs.chmodSync(target, mode);
  };
  write("etc/hostname", `${name}\n`);
  write("etc/hosts", `127.0.0.1 localhost\n127.0.1.1 ${name}\n::1 localhost ip6-localhost ip6-loopback\n`);
  // Its own SSH host key, made here so the test knows it before the first connection.
  sh(`ssh-keygen -q -t ed25519 -N '' -C root@${name} -f ${q(path.join(root, "etc/ssh/ssh_host_ed25519_key"))}`);
  write("etc/ssh/sshd_config.d/edgeplane-test.conf", "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\n");

  // The operator's part (README "Preparing a host"): a deploy user with passwordless sudo.
  sh(`chroot ${q(root)} useradd --create-home --shell /bin/bash ${DEPLOY_USER}`);
  write(`etc/sudoers.d/${DEPLOY_USER}`, `${DEPLOY_USER} ALL=(ALL) NOPASSWD: ALL\n`, 0o440);
  write(`home/${DEPLOY_USER}/.ssh/authorized_keys`, publicKey, 0o600);
  sh(`chroot ${q(root)} chown -R ${DEPLOY_USER}:${DEPLOY_USER} /home/${DEPLOY_USER}/.ssh`);
  fs.chmodSync(path.join(root, `home/${DEPLOY_USER}/.ssh`), 0o700);

  // The sandbox's part, never edgeplane's.
  write("etc/containers/containers.conf.d/zz-edgeplane-test-harness.conf", SANDBOX_CONTAINERS_CONF);
  // nspawn creates /dev/net/tun for a machine with its own network, but 0600; pasta runs
  // as the service user and needs it 0666, as a distribution's udev rules leave it.
  write("etc/tmpfiles.d/zz-edgeplane-test-harness.conf", "z /dev/net/tun 0666 root root -\n");
  // Under nspawn here every user manager (even one without units) hangs on shutdown
  // until its 120 s stop timeout; a reboot should not take minutes.
  write("etc/systemd/system/user@.service.d/zz-edgeplane-test-harness.conf", "[Service]\nTimeoutStopSec=20s\n");
  const wants = path.join(root, "etc/systemd/system/multi-user.target.wants");
  fs.mkdirSync(wants, { recursive: true });
  fs.symlinkSync("/usr/lib/systemd/system/network-online.target", path.join(wants, "network-online.target"));
  if (opts.images && opts.registry) {
    const binDir = "opt/edgeplane-test/bin";
    fs.mkdirSync(path.join(root, binDir), { recursive: true });
    fs.copyFileSync(opts.registry, path.join(root, binDir, "test-registry"));
    fs.chmodSync(path.join(root, binDir, "test-registry"), 0o755);
    // Image sources are copied in, and the spec rewritten to their in-host paths.
    const sources = new Map<string, string>();
    const images = opts.images.map((image) => ({
      ...image,
      files: image.files.map((f) => {
        if (!("source" in f)) return f;
        let inHost = sources.get(f.source);
        if (!inHost) {
          inHost = `/${binDir}/${sources.size}-${path.basename(f.source)}`;
          sources.set(f.source, inHost);
          fs.copyFileSync(f.source, path.join(root, inHost));
        }
        return { ...f, source: inHost };
      }),
    }));
    write("opt/edgeplane-test/images.json", JSON.stringify(images, null, 2));
    write("etc/containers/registries.conf.d/zz-edgeplane-test-harness.conf", REGISTRY_CONF);
    write("etc/systemd/system/edgeplane-test-registry.service", REGISTRY_UNIT);
    fs.symlinkSync("/etc/systemd/system/edgeplane-test-registry.service", path.join(wants, "edgeplane-test-registry.service"));
  }
}

/** The PID of the machine's systemd: the nspawn process's child (nspawn forks once for the container). */
function systemdChild(nspawnPid: number): number | undefined {
  const seen: number[] = [nspawnPid];
  for (let depth = 0; depth < 3; depth++) {
    const next: number[] = [];
    for (const pid of seen) {
      let children: number[] = [];
      try {
        children = fs
          .readdirSync(`/proc/${pid}/task`)
          .flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/))
          .filter(Boolean)
          .map(Number);
      } catch {
        continue;
      }
      for (const c of children) {
        try {
          const comm = fs.readFileSync(`/proc/${c}/comm`, "utf8").trim();
          if (comm === "systemd") return c;
        } catch {
          /* gone */
        }
        next.push(c);
      }
    }
    seen.splice(0, seen.length, ...next);
  }
  return undefined;
}

function nsExec(leader: number, command: string, opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn("nsenter", ["-t", String(leader), "-a", "--", "/bin/sh", "-c", command], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    // The process may exit before reading its input.
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}

function tcpOpen(host: string, port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 1000 }, () => (s.destroy(), resolve(true)));
    s.on("error", () => resolve(undefined));
    s.on("timeout", () => (s.destroy(), resolve(undefined)));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  attempt: () => T | undefined | Promise<T | undefined>,
  exited: Promise<unknown>,
  log: string,
): Promise<T> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    const tail = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").slice(-30).join("\n") : "");
    if (gone) throw new Error(`${what}: systemd-nspawn exited\n${tail()}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s\n${tail()}`);
    await sleep(250);
  }
}

/** The machine's temp dir for files the tests write (keys, stacks). */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
