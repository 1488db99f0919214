/** Key=value lines of one section of a unit file, in order (comments and blank lines dropped). */
export function sectionLines(text: string, name: string): string[] {
  const out: string[] = [];
  let current = "";
  for (const line of text.split("\n")) {
    const header = /^\[(.+)\]$/.exec(line);
    if (header) current = header[1] ?? "";
    else if (current === name && line !== "" && !line.startsWith("#")) out.push(line);
  }
  return out;
}
