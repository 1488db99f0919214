/**
 * Compares two offline plans resource by resource, and says whose each resource is:
 * the service whose SidecarPod it sits under, or the host-wide component. Used by the
 * minimal-change tests and the benchmark.
 */
import type { Plan } from "./manifest";

type PlannedResource = Plan["resources"][number];

export interface PlanChanges {
  readonly added: string[];
  readonly removed: string[];
  /** Present in both with different inputs. */
  readonly changed: string[];
}

const key = (r: Pick<PlannedResource, "type" | "name">) => `${r.type}::${r.name}`;

export function comparePlans(before: Pick<Plan, "resources">, after: Pick<Plan, "resources">): PlanChanges {
  const old = new Map(before.resources.map((r) => [key(r), JSON.stringify(r.inputs)]));
  const now = new Map(after.resources.map((r) => [key(r), JSON.stringify(r.inputs)]));
  const added = [...now.keys()].filter((k) => !old.has(k));
  const removed = [...old.keys()].filter((k) => !now.has(k));
  const changed = [...now.keys()].filter((k) => old.has(k) && old.get(k) !== now.get(k));
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}

/**
 * The top-level component each resource sits under (`type::name` → component name):
 * a service's SidecarPod, or the host-wide IngressHost (and the like).
 */
export function owners(plan: Pick<Plan, "resources">): Map<string, string> {
  const parentOf = new Map(plan.resources.map((r) => [r.name, r.parent]));
  const out = new Map<string, string>();
  for (const r of plan.resources) {
    let name = r.name;
    for (let parent = r.parent; parent !== null && parent !== undefined; parent = parentOf.get(parent) ?? null) name = parent;
    out.set(key(r), name);
  }
  return out;
}
