/**
 * What every preflight check reports, and the one place its text is put together and
 * scrubbed of credentials.
 */

/**
 * - `ok`: verified;
 * - `fail`: `pulumi up` would fail (or preflight cannot vouch that it would not);
 * - `warn`: worth knowing, does not fail the run;
 * - `skip`: not checked, and why.
 */
export type CheckStatus = "ok" | "fail" | "warn" | "skip";

export interface Check {
  readonly status: CheckStatus;
  readonly what: string;
  /** What to do about it. */
  readonly hint?: string;
}

export const ok = (what: string): Check => ({ status: "ok", what });
export const fail = (what: string, hint?: string): Check => ({ status: "fail", what, ...(hint ? { hint } : {}) });
export const warn = (what: string, hint?: string): Check => ({ status: "warn", what, ...(hint ? { hint } : {}) });
export const skip = (what: string): Check => ({ status: "skip", what });

const LABEL: Record<CheckStatus, string> = { ok: "ok   ", fail: "FAIL ", warn: "warn ", skip: "skip " };

export const REDACTED = "[redacted]";

/**
 * Replaces every credential in `text`. Checks never include one on purpose; this is the
 * net under them, for an API that echoes what it was sent in an error message.
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains another is removed whole.
  for (const secret of [...secrets].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join(REDACTED);
  }
  return out;
}

export function formatChecks(checks: readonly Check[]): string {
  return checks
    .map((c) => `${LABEL[c.status]} ${c.what}${c.hint ? `\n      → ${c.hint.replace(/\n/g, "\n        ")}` : ""}`)
    .join("\n");
}

export function failed(checks: readonly Check[]): number {
  return checks.filter((c) => c.status === "fail").length;
}
