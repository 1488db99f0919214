/**
 * Real processes on loopback for the live tests: Caddy started from a rendered
 * Caddyfile, an echo app, and a client that speaks exactly what Envoy would send
 * (a PROXY protocol v2 header, then the client's TLS stream).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, proc: ChildProcess, log: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`caddy exited with ${proc.exitCode}:\n${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`caddy did not listen on ${port} within ${timeoutMs} ms:\n${log()}`);
}

export interface RunningCaddy {
  readonly port: number;
  /** The port of the Caddyfile's metrics site, moved to a free loopback port too. */
  readonly metricsPort: number;
  /** The root certificate of Caddy's internal CA, to verify served certificates. */
  readonly rootCA: () => string;
  readonly log: () => string;
  /** `caddy reload` through the admin socket, as the pod's reload command does. */
  reload(caddyfile: string): void;
  stop(): Promise<void>;
}

/**
 * Starts Caddy with a rendered Caddyfile. Only what differs between a pod and this
 * machine is changed, in the global options: Envoy's address in the PROXY allow list
 * (the ingress's tailnet address there, loopback here), the HTTPS port (the pod maps Caddy's 443
 * to caddyPort; here Caddy listens on a free loopback port itself, and the `servers`
 * options for :443 follow it), the metrics site's port (a free one), the admin socket
 * (in the container's own /run there; in this test's folder here, so tests running
 * side by side do not share one), and no attempt to install the internal CA into this
 * machine's trust store.
 */
export async function startCaddy(caddy: string, caddyfile: string, env: Record<string, string> = {}): Promise<RunningCaddy> {
  const port = await freePort();
  const metricsPort = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-caddy-"));
  const adminAddress = `unix/${path.join(dir, "admin.sock")}`;
  const file = path.join(dir, "Caddyfile");
  const install = (text: string) => {
    const adapted = text
      .replace(/^\{\n/m, `{\n\thttps_port ${port}\n\tskip_install_trust\n`)
      .replace(/^\tadmin unix\/\S+$/m, `\tadmin ${adminAddress}`)
      .replace(/^\tservers :443 \{$/m, `\tservers :${port} {`)
      .replace(/^http:\/\/:\d+ \{$/m, `http://127.0.0.1:${metricsPort} {`)
      // Envoy reaches a pod from the ingress's tailnet address; here it is this machine's loopback.
      .replace(/(proxy_protocol \{[^}]*?\n\t+allow )\S+\/32\n/, "$1127.0.0.1/32\n");
    if (!adapted.includes(`https_port ${port}`) || !adapted.includes(adminAddress)) {
      throw new Error("rendered Caddyfile has no global options block with a unix admin socket");
    }
    if (!/proxy_protocol \{[^}]*?\n\t+allow 127\.0\.0\.1\/32\n/.test(adapted)) {
      throw new Error("rendered Caddyfile has no PROXY protocol allow list");
    }
    fs.writeFileSync(file, adapted);
  };
  install(caddyfile);
  let output = "";
  const proc = spawn(caddy, ["run", "--config", file, "--adapter", "caddyfile"], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: dir,
      XDG_DATA_HOME: path.join(dir, "data"),
      XDG_CONFIG_HOME: path.join(dir, "config"),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout!.on("data", (d) => (output += d));
  proc.stderr!.on("data", (d) => (output += d));
  const log = () => output;
  await waitForPort(port, proc, log);
  return {
    port,
    metricsPort,
    log,
    reload: (text: string) => {
      install(text);
      const r = spawnSync(caddy, ["reload", "--config", file, "--adapter", "caddyfile", "--address", adminAddress], {
        encoding: "utf8",
      });
      if (r.status !== 0) throw new Error(`caddy reload failed: ${r.stderr}`);
    },
    rootCA: () => fs.readFileSync(path.join(dir, "data", "caddy", "pki", "authorities", "local", "root.crt"), "utf8"),
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once("exit", () => resolve());
        proc.kill("SIGKILL");
      }),
  };
}

export interface EchoedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** An app that answers every request with what it received, as JSON. */
export async function startEcho(port: number, handler?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean) {
  const server = http.createServer((req, res) => {
    if (handler?.(req, res)) return;
    const body: EchoedRequest = { method: req.method ?? "", url: req.url ?? "", headers: req.headers };
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A PROXY protocol v2 header for a TCP/IPv4 connection, as Envoy's upstream transport sends it. */
export function proxyV2Header(src: { ip: string; port: number }, dst: { ip: string; port: number }): Buffer {
  const signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const body = Buffer.alloc(12);
  src.ip.split(".").forEach((o, i) => body.writeUInt8(Number(o), i));
  dst.ip.split(".").forEach((o, i) => body.writeUInt8(Number(o), 4 + i));
  body.writeUInt16BE(src.port, 8);
  body.writeUInt16BE(dst.port, 10);
  // version 2, command PROXY; family AF_INET, protocol STREAM; 12 address bytes
  return Buffer.concat([signature, Buffer.from([0x21, 0x11, 0x00, 12]), body]);
}

export interface ClientOptions {
  readonly port: number;
  /** Address to connect to (default 127.0.0.1). */
  readonly host?: string;
  readonly servername: string;
  readonly ca?: string;
  /** Local address to connect from (another loopback address plays "not Envoy"). */
  readonly from?: string;
  /** Sent before TLS, as Envoy's cluster does. */
  readonly proxyHeader?: Buffer;
  readonly path?: string;
  readonly headers?: readonly [string, string][];
}

export interface Response {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A connection as Envoy opens it: the PROXY header (if any), then TLS with SNI and `alpn`. */
function envoyConnection(opts: ClientOptions, alpn: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({
      host: opts.host ?? "127.0.0.1",
      port: opts.port,
      ...(opts.from ? { localAddress: opts.from } : {}),
    });
    raw.on("error", reject);
    raw.once("connect", () => {
      if (opts.proxyHeader) raw.write(opts.proxyHeader);
      const socket = tls.connect({
        socket: raw,
        servername: opts.servername,
        ALPNProtocols: [alpn],
        ...(opts.ca ? { ca: opts.ca } : {}),
      });
      socket.on("error", reject);
      socket.once("secureConnect", () => resolve(socket));
    });
  });
}

/** One HTTPS/1.1 request over a hand-built connection (PROXY header, then TLS with SNI). */
export function request(opts: ClientOptions): Promise<Response> {
  const lines = [`GET ${opts.path ?? "/"} HTTP/1.1`, `Host: ${opts.servername}`, "Connection: close"];
  for (const [k, v] of opts.headers ?? []) lines.push(`${k}: ${v}`);
  return rawRequest(opts, lines.join("\r\n") + "\r\n\r\n");
}

/**
 * Writes `text`, a whole HTTP/1.1 request exactly as given (any header spelling, a
 * chunked body with trailers…), over an Envoy-like connection and reads the answer. The
 * request should say `Connection: close`.
 */
export async function rawRequest(opts: ClientOptions, text: string): Promise<Response> {
  const socket = await envoyConnection(opts, "http/1.1");
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.once("end", () => {
      const answer = Buffer.concat(chunks).toString("utf8");
      // A server that drops the connection without answering has refused the request.
      if (!answer.startsWith("HTTP/")) reject(new Error("connection closed without a response"));
      else resolve(parseResponse(answer));
    });
    socket.write(text);
  });
}

export interface H2Options {
  readonly method?: string;
  readonly path: string;
  /** Sent as given (HTTP/2 lowercases names); `:authority` defaults to the server name. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Sent as a trailing HEADERS frame after the body; declared in a `trailer` header. */
  readonly trailers?: Readonly<Record<string, string>>;
}

/** One HTTP/2 request over an Envoy-like connection. */
export async function h2Request(opts: ClientOptions, req: H2Options): Promise<Response> {
  const socket = await envoyConnection(opts, "h2");
  const session = http2.connect(`https://${opts.servername}`, { createConnection: () => socket });
  try {
    return await new Promise<Response>((resolve, reject) => {
      session.once("error", reject);
      const trailers = req.trailers ?? {};
      const stream = session.request(
        {
          ":method": req.method ?? (req.body === undefined ? "GET" : "POST"),
          ":path": req.path,
          ":authority": opts.servername,
          ...(Object.keys(trailers).length > 0 ? { trailer: Object.keys(trailers).join(", ") } : {}),
          ...req.headers,
        },
        { endStream: req.body === undefined, waitForTrailers: Object.keys(trailers).length > 0 },
      );
      stream.on("wantTrailers", () => stream.sendTrailers(trailers));
      stream.once("error", reject);
      const headers: Record<string, string> = {};
      let status = 0;
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        for (const [k, v] of Object.entries(h)) if (!k.startsWith(":")) headers[k] = String(v);
      });
      const chunks: Buffer[] = [];
      stream.on("data", (d: Buffer) => chunks.push(d));
      stream.once("end", () => resolve({ status, headers, body: Buffer.concat(chunks).toString("utf8") }));
      if (req.body !== undefined) stream.end(req.body);
    });
  } finally {
    session.close();
  }
}

function parseResponse(text: string): Response {
  const split = text.indexOf("\r\n\r\n");
  const [statusLine, ...headerLines] = text.slice(0, split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const i = line.indexOf(":");
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = text.slice(split + 4);
  if (headers["transfer-encoding"] === "chunked") body = unchunk(body);
  return { status: Number(statusLine?.split(" ")[1]), headers, body };
}

function unchunk(body: string): string {
  let out = "";
  let rest = body;
  for (;;) {
    const eol = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, eol), 16);
    if (!size) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

/**
 * A self-signed certificate for `name` (made with openssl), for a stand-in upstream that
 * Caddy must verify: start Caddy with `SSL_CERT_FILE` = `certFile`, which Go reads as
 * the whole system trust store on Linux, so nothing else is trusted either.
 */
export function selfSignedCertificate(name: string): { cert: string; key: string; certFile: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-cert-"));
  const certFile = path.join(dir, "cert.pem");
  const keyFile = path.join(dir, "key.pem");
  const r = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      `subjectAltName=DNS:${name}`,
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`openssl could not make a certificate for ${name}: ${r.error?.message ?? r.stderr}`);
  return { cert: fs.readFileSync(certFile, "utf8"), key: fs.readFileSync(keyFile, "utf8"), certFile };
}

/** Retries `attempt` until it resolves (Caddy issues its certificate just after it starts listening). */
export async function eventually<T>(attempt: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Plain bytes to a port, returning whatever comes back before the server closes. */
export function rawExchange(port: number, payload: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => s.write(payload));
    let out = "";
    s.on("data", (d) => (out += d.toString("latin1")));
    const done = () => resolve(out);
    s.once("close", done);
    s.once("error", done);
    s.setTimeout(timeoutMs, () => s.destroy());
  });
}
