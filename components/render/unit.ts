/**
 * A tiny model of systemd unit files (and Podman Quadlet files, which use the same
 * syntax) plus the one function that serializes it. Renderers build sections of
 * ordered entries; every quoting and escaping decision is made here, in `marshalUnit`.
 *
 * ## How a value is written
 *
 * systemd.syntax(7): a line is `Key=value`; whitespace around the value is dropped, a
 * trailing backslash joins the next line, and `#`/`;` lines are comments. Values are
 * therefore written verbatim, except:
 *
 *  1. `%` becomes `%%`. systemd expands `%` specifiers (`%h`, `%n`, …) in most settings,
 *     and Quadlet copies the values of its own sections into the generated service's
 *     command lines, where systemd expands them too. edgeplane never relies on
 *     specifiers (it renders absolute paths), so every `%` is literal.
 *  2. `$` becomes `$$` in Quadlet sections ([Container], [Pod], [Volume], …) and in
 *     `Exec*` keys: those values end up in ExecStart/ExecStartPre, where systemd
 *     substitutes `$NAME` and `${NAME}`, and `$$` is its literal dollar.
 *  3. A `words` value (for keys that systemd and Quadlet split into words:
 *     `Environment=`, `Exec=`, `PodmanArgs=`) is written word by word. A word that is
 *     empty or contains whitespace, a quote or a backslash is double-quoted, with `\`
 *     written `\\` and `"` written `\"` (the C-style unescaping Quadlet's
 *     `LookupAllKeyVal`/`LookupLastArgs` and systemd's word splitting apply).
 *
 * Anything that cannot be written this way is rejected with an error rather than
 * rendered into something that means something else: control characters (newline,
 * NUL, …) anywhere, and plain values that are empty (an empty assignment resets a
 * setting), start or end with whitespace (dropped by the parser) or end with a
 * backslash (a line continuation).
 */

/** A value that is split into words by its reader (see rule 3 above). */
export interface UnitWords {
  readonly words: readonly string[];
}

export type UnitValue = string | UnitWords;

export interface UnitEntry {
  readonly key: string;
  readonly value: UnitValue;
  /** Comment lines written directly above the entry: say why, not what. */
  readonly comment?: readonly string[];
}

export interface UnitSection {
  /** Section name without brackets, e.g. "Container". */
  readonly name: string;
  readonly entries: readonly UnitEntry[];
}

export interface UnitFile {
  /** Where the file comes from, for the header comment, e.g. "service grafana". */
  readonly origin: string;
  readonly sections: readonly UnitSection[];
}

/** Sections Quadlet turns into podman command-line arguments. */
const QUADLET_SECTIONS = new Set(["Container", "Pod", "Volume", "Network", "Kube", "Image", "Build"]);

const SECTION_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;
const KEY_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;
// C0 controls (newline and NUL included) and DEL.
const CONTROL = /[\u0000-\u001f\u007f]/;

export function words(...list: string[]): UnitWords {
  return { words: list };
}

export function entry(key: string, value: UnitValue, comment?: readonly string[]): UnitEntry {
  return comment ? { key, value, comment } : { key, value };
}

export function section(name: string, ...entries: (UnitEntry | readonly UnitEntry[])[]): UnitSection {
  return { name, entries: entries.flat() };
}

function rejectControl(what: string, text: string): void {
  if (CONTROL.test(text)) {
    throw new Error(`${what} contains a newline, NUL or other control character: ${JSON.stringify(text)}`);
  }
}

function quoteWord(word: string): string {
  if (word !== "" && !/[\s"'\\]/.test(word)) return word;
  return `"${word.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function formatValue(where: string, value: UnitValue, escapeDollar: boolean): string {
  let text: string;
  if (typeof value === "string") {
    rejectControl(where, value);
    if (value === "") throw new Error(`${where} is empty; an empty assignment would reset the setting`);
    if (value.trim() !== value)
      throw new Error(`${where} starts or ends with whitespace, which systemd drops: ${JSON.stringify(value)}`);
    if (value.endsWith("\\")) throw new Error(`${where} ends with a backslash, which systemd reads as a line continuation`);
    text = value;
  } else {
    if (value.words.length === 0) throw new Error(`${where} has no words`);
    for (const w of value.words) rejectControl(where, w);
    text = value.words.map(quoteWord).join(" ");
  }
  text = text.replace(/%/g, "%%");
  return escapeDollar ? text.replace(/\$/g, "$$$$") : text;
}

/** Serializes a unit file: header comment, then each section, separated by blank lines. */
export function marshalUnit(unit: UnitFile): string {
  rejectControl("unit origin", unit.origin);
  const lines = [`# managed by edgeplane — ${unit.origin}; do not edit by hand`];
  for (const sec of unit.sections) {
    if (!SECTION_NAME.test(sec.name)) throw new Error(`invalid unit section name ${JSON.stringify(sec.name)}`);
    lines.push("", `[${sec.name}]`);
    for (const e of sec.entries) {
      if (!KEY_NAME.test(e.key)) throw new Error(`invalid key ${JSON.stringify(e.key)} in [${sec.name}]`);
      for (const c of e.comment ?? []) {
        rejectControl(`comment on [${sec.name}] ${e.key}`, c);
        lines.push(c === "" ? "#" : `# ${c}`);
      }
      const escapeDollar = QUADLET_SECTIONS.has(sec.name) || e.key.startsWith("Exec");
      lines.push(`${e.key}=${formatValue(`[${sec.name}] ${e.key}`, e.value, escapeDollar)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
