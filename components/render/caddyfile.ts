/**
 * A tiny block tree for Caddyfiles and the one function that serializes it, in the
 * shape `caddy fmt` produces (tab indentation, `{` at the end of the opening line, `}`
 * alone on its line, a blank line between top-level blocks). Every quoting decision is
 * made in `marshalCaddyfile`; renderers only say which tokens are literal text and
 * which are placeholders.
 *
 * ## How a literal token is written (caddyconfig/caddyfile/lexer.go)
 *
 * A token is written bare unless the lexer would read it differently. It is
 * double-quoted when it is empty, contains whitespace, a `"`, a backtick, a `#`
 * (a comment when it starts a token), a `{` or `}`, or a backslash, or starts with
 * `<<` (a heredoc). Inside double quotes the lexer knows exactly one escape, `\"`;
 * every other backslash stays literal. So a `"` is written `\"`, and a literal
 * backslash right before a `"` or at the end of the token cannot be written at all
 * (the lexer would take it as the escape): such tokens are rejected.
 *
 * Braces: Caddy's replacer treats `{name}` as a placeholder even inside quotes, and
 * treats `\{` and `\}` as literal braces (replacer.go, `phEscape`). A literal token
 * therefore has its braces written `\{` and `\}`. Real placeholders are `Placeholder`
 * tokens and are written bare, e.g. `{env.CF_API_TOKEN}`.
 *
 * Rejected everywhere (tokens and comments): control characters, and the sequence
 * `{$`, which the Caddyfile adapter replaces with an environment variable at adapt
 * time before anything else sees it.
 */

/** A runtime placeholder, written bare as `{name}`. */
export interface Placeholder {
  readonly placeholder: string;
}

/**
 * An environment variable the Caddyfile adapter substitutes when it reads the file,
 * written `{$NAME}`: the value is in the adapted config, never in the file.
 */
export interface AdaptTimeEnv {
  readonly adaptTimeEnv: string;
}

export type CaddyToken = string | Placeholder | AdaptTimeEnv;

export interface Directive {
  readonly kind: "directive";
  /** The directive name and its arguments. Empty only for the global options block. */
  readonly tokens: readonly CaddyToken[];
  /** Child lines inside `{ … }`; omitted or empty = no block. */
  readonly block?: readonly CaddyNode[];
}

export interface Comment {
  readonly kind: "comment";
  readonly text: string;
}

export type CaddyNode = Directive | Comment;

export interface Caddyfile {
  /** Where the file comes from, for the header comment, e.g. "service grafana". */
  readonly origin: string;
  /** Top-level nodes: the global options block first, then site blocks. */
  readonly nodes: readonly CaddyNode[];
}

const CONTROL = /[\u0000-\u001f\u007f]/;
const PLACEHOLDER_NAME = /^[A-Za-z0-9_.\-]+$/;

export function placeholder(name: string): Placeholder {
  return { placeholder: name };
}

export function adaptTimeEnv(name: string): AdaptTimeEnv {
  return { adaptTimeEnv: name };
}

export function directive(
  tokens: CaddyToken | readonly CaddyToken[],
  block?: readonly (CaddyNode | readonly CaddyNode[])[],
): Directive {
  const list: readonly CaddyToken[] = Array.isArray(tokens) ? tokens : [tokens as CaddyToken];
  return block ? { kind: "directive", tokens: list, block: block.flat() } : { kind: "directive", tokens: list };
}

/** The global options block: `{ … }` with no leading tokens. */
export function globalBlock(block: readonly (CaddyNode | readonly CaddyNode[])[]): Directive {
  return { kind: "directive", tokens: [], block: block.flat() };
}

/** One comment line per string. */
export function comment(...lines: string[]): Comment[] {
  return lines.map((text) => ({ kind: "comment", text }));
}

function rejectUnwritable(what: string, text: string): void {
  if (CONTROL.test(text))
    throw new Error(`Caddyfile ${what} contains a newline or other control character: ${JSON.stringify(text)}`);
  if (text.includes("{$"))
    throw new Error(
      `Caddyfile ${what} contains "{$", which the adapter would replace with an environment variable: ${JSON.stringify(text)}`,
    );
}

function isPlaceholder(token: CaddyToken): token is Placeholder {
  return typeof token !== "string" && "placeholder" in token;
}

/** Writes one token as the Caddyfile lexer must read it back (rules in the file comment). */
export function formatToken(token: CaddyToken): string {
  if (typeof token !== "string" && "adaptTimeEnv" in token) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(token.adaptTimeEnv))
      throw new Error(`invalid environment variable name ${JSON.stringify(token.adaptTimeEnv)}`);
    return `{$${token.adaptTimeEnv}}`;
  }
  if (isPlaceholder(token)) {
    if (!PLACEHOLDER_NAME.test(token.placeholder))
      throw new Error(`invalid Caddy placeholder name ${JSON.stringify(token.placeholder)}`);
    return `{${token.placeholder}}`;
  }
  rejectUnwritable("token", token);
  const needsQuotes = token === "" || /[\s"`#{}\\]/.test(token) || token.startsWith("<<");
  if (!needsQuotes) return token;
  if (/\\$|\\"/.test(token)) {
    throw new Error(
      `Caddyfile token ${JSON.stringify(token)} has a backslash before a quote or at its end, which the lexer cannot read back`,
    );
  }
  return `"${token.replace(/[{}]/g, (b) => `\\${b}`).replace(/"/g, '\\"')}"`;
}

function marshalNodes(nodes: readonly CaddyNode[], depth: number, out: string[]): void {
  const indent = "\t".repeat(depth);
  let previous: CaddyNode["kind"] | undefined;
  for (const node of nodes) {
    // caddy fmt keeps the author's blank lines; edgeplane separates top-level blocks
    // with exactly one, and keeps a comment attached to the block it introduces.
    if (depth === 0 && previous === "directive") out.push("");
    if (node.kind === "comment") {
      rejectUnwritable("comment", node.text);
      out.push(node.text === "" ? `${indent}#` : `${indent}# ${node.text}`);
    } else {
      if (node.tokens.length === 0 && !(depth === 0 && node.block && node.block.length > 0)) {
        throw new Error("only the top-level global options block may have no tokens");
      }
      const head = node.tokens.map(formatToken).join(" ");
      if (node.block && node.block.length > 0) {
        out.push(`${indent}${head === "" ? "{" : `${head} {`}`);
        marshalNodes(node.block, depth + 1, out);
        out.push(`${indent}}`);
      } else {
        out.push(`${indent}${head}`);
      }
    }
    previous = node.kind;
  }
}

/** Serializes a Caddyfile: the header comment, then the nodes. */
export function marshalCaddyfile(file: Caddyfile): string {
  rejectUnwritable("origin", file.origin);
  const out = [`# managed by edgeplane — ${file.origin}; do not edit by hand`];
  marshalNodes(file.nodes, 0, out);
  return `${out.join("\n")}\n`;
}
