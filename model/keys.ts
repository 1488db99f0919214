/**
 * Walking the config schema: the keys known at a path (for "did you mean" suggestions)
 * and the schema behind wrappers such as optional, default and transforms.
 */
import { z } from "zod";
import { configSchema } from "./schema";

/** The schema inside optional/default/nullable/effects/pipeline wrappers. */
export function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) schema = schema.unwrap();
    else if (schema instanceof z.ZodDefault) schema = schema.removeDefault();
    else if (schema instanceof z.ZodEffects) schema = schema.innerType();
    else if (schema instanceof z.ZodPipeline) schema = schema._def.in;
    else return schema;
  }
}

/** The object keys the schema knows at a config path (`["services", "grafana", "l7"]`), or none. */
export function knownKeysAt(path: readonly (string | number)[]): string[] {
  let schema: z.ZodTypeAny = configSchema;
  for (const segment of path) {
    const inner = unwrap(schema);
    if (inner instanceof z.ZodObject) {
      const next = (inner.shape as Record<string, z.ZodTypeAny>)[String(segment)];
      if (!next) return [];
      schema = next;
    } else if (inner instanceof z.ZodRecord) schema = inner.valueSchema;
    else if (inner instanceof z.ZodArray) schema = inner.element;
    else return [];
  }
  const inner = unwrap(schema);
  return inner instanceof z.ZodObject ? Object.keys(inner.shape) : [];
}

/** The known key closest to a misspelt one, if any is close enough to be what was meant. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (!best || distance < best.distance) best = { key: candidate, distance };
  }
  // A third of the name (at least 2 edits): `tailscal`, `envoi`, `maxConections`, but not `foo` for `tls`.
  return best && best.distance <= Math.max(2, Math.floor(key.length / 3)) && best.distance < key.length ? best.key : undefined;
}

/** Levenshtein distance, with a transposition counted as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
