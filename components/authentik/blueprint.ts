/**
 * Authentik blueprint documents as typed values, serialized once with `yaml`.
 *
 * The blueprint importer hands each entry's `identifiers` and `attrs` to the same
 * Django REST serializers the Authentik API is generated from, under their snake_case
 * wire names. `Wire<ProxyProviderRequest>` is the set of those names for a proxy
 * provider, derived from the API client's request type, so a misspelt or removed
 * attribute is a compile-time error rather than a blueprint that silently does less
 * (blueprint failures are easy to miss: goauthentik/authentik#9431, #12186).
 *
 * The tags `!Find` and `!KeyOf` are emitted as real YAML tags (Authentik's loader
 * constructs them from the tag, so a quoted "!Find [...]" string would be a literal).
 */
import YAML, { isScalar, isSeq, YAMLSeq, type CollectionTag, type ScalarTag } from "yaml";
// Type-only deep imports, erased at run time. The 2025.10.x and 2025.12.x tarballs of
// @goauthentik/api ship no dist/index.{js,d.ts} (only the ESM build has an index), so
// the package's `types` entry does not resolve; the per-model declarations do.
import type { ApplicationRequest } from "@goauthentik/api/dist/esm/models/ApplicationRequest";
import type { ExpressionPolicyRequest } from "@goauthentik/api/dist/esm/models/ExpressionPolicyRequest";
import type { GroupRequest } from "@goauthentik/api/dist/esm/models/GroupRequest";
import type { OutpostRequest } from "@goauthentik/api/dist/esm/models/OutpostRequest";
import type { PolicyBindingRequest } from "@goauthentik/api/dist/esm/models/PolicyBindingRequest";
import type { ProxyProviderRequest } from "@goauthentik/api/dist/esm/models/ProxyProviderRequest";

/** `!Find [model, [field, value]]`: the primary key of an existing object, looked up when the blueprint applies. */
export class Find {
  constructor(
    readonly model: string,
    readonly field: string,
    readonly value: string,
  ) {}
}

/** `!KeyOf id`: the primary key of the object created by the entry with that `id` in the same blueprint. */
export class KeyOf {
  constructor(readonly id: string) {
    if (!ENTRY_ID.test(id)) throw new Error(`blueprint entry id must match ${ENTRY_ID}: ${JSON.stringify(id)}`);
  }
}

/** Entry ids are written as plain YAML scalars after `!KeyOf`, so keep them plain. */
const ENTRY_ID = /^[a-z][a-z0-9-]*$/;

const findTag: CollectionTag = {
  tag: "!Find",
  collection: "seq",
  identify: (value) => value instanceof Find,
  createNode: (schema, value, ctx) => {
    const find = value as Find;
    const seq = YAMLSeq.from(schema, [find.model, [find.field, find.value]], ctx);
    seq.flow = true;
    return seq;
  },
  resolve: (node, onError) => {
    const [model, query] = isSeq(node) ? node.items : [];
    const [field, value] = isSeq(query) ? query.items : [];
    if (
      isScalar(model) &&
      isScalar(field) &&
      isScalar(value) &&
      node.items.length === 2 &&
      isSeq(query) &&
      query.items.length === 2
    ) {
      return new Find(String(model.value), String(field.value), String(value.value));
    }
    onError("!Find expects [model, [field, value]]");
    return undefined;
  },
};

const keyOfTag: ScalarTag = {
  tag: "!KeyOf",
  identify: (value) => value instanceof KeyOf,
  resolve: (value) => new KeyOf(value),
  stringify: (item) => (item.value as KeyOf).id,
};

/** The custom tags edgeplane writes; pass them to a parser to read a blueprint back. */
export const BLUEPRINT_TAGS = [findTag, keyOfTag];

/** snake_case of a camelCase name, as Authentik's generated clients map them: `metaLaunchUrl` → `meta_launch_url`. */
type SnakeCase<S extends string> = S extends `${infer C}${infer Rest}`
  ? `${C extends Lowercase<C> ? C : `_${Lowercase<C>}`}${SnakeCase<Rest>}`
  : S;

/** What a blueprint may put where the API takes T: T itself, or a tag the importer resolves to it. */
type BlueprintValue<T> = T extends readonly (infer E)[] ? BlueprintValue<E>[] : T extends object ? T : T | Find | KeyOf;

/** The wire form of an API request type: snake_case keys, every key optional (the importer updates partially). */
export type Wire<T> = { [K in keyof T & string as SnakeCase<K>]?: BlueprintValue<Exclude<T[K], undefined>> };

/** The API request type behind each model this program writes. */
export interface BlueprintModels {
  "authentik_providers_proxy.proxyprovider": ProxyProviderRequest;
  "authentik_core.application": ApplicationRequest;
  "authentik_policies_expression.expressionpolicy": ExpressionPolicyRequest;
  "authentik_policies.policybinding": PolicyBindingRequest;
  "authentik_outposts.outpost": OutpostRequest;
  "authentik_core.group": GroupRequest;
}

export type BlueprintModel = keyof BlueprintModels;

/** What the importer does with an entry's object (authentik/blueprints/v1/common.py, BlueprintEntryDesiredState). */
export type BlueprintState = "present" | "created" | "absent";

export interface BlueprintEntry {
  readonly model: BlueprintModel;
  /**
   * Omitted means `present`: create or update. `created`: create when missing, never
   * update an existing one. `absent` deletes the object the identifiers find.
   */
  readonly state?: BlueprintState;
  readonly id?: string;
  readonly identifiers?: object;
  readonly attrs?: object;
}

export interface Blueprint {
  readonly version: 1;
  readonly metadata: { readonly name: string };
  /** Values the importer merges into its context; edgeplane's own checks read them too. */
  readonly context?: Readonly<Record<string, unknown>>;
  readonly entries: readonly BlueprintEntry[];
}

/**
 * One blueprint entry, its identifiers and attrs checked against the model's API type.
 * Keys come out in the order model, state, id, identifiers, attrs.
 */
export function blueprintEntry<M extends BlueprintModel>(
  model: M,
  fields: {
    readonly state?: BlueprintState;
    readonly id?: string;
    readonly identifiers?: Wire<BlueprintModels[M]>;
    readonly attrs?: Wire<BlueprintModels[M]>;
  },
): BlueprintEntry {
  if (fields.id !== undefined && !ENTRY_ID.test(fields.id)) {
    throw new Error(`blueprint entry id must match ${ENTRY_ID}: ${JSON.stringify(fields.id)}`);
  }
  return {
    model,
    ...(fields.state !== undefined ? { state: fields.state } : {}),
    ...(fields.id !== undefined ? { id: fields.id } : {}),
    ...(fields.identifiers !== undefined ? { identifiers: fields.identifiers } : {}),
    ...(fields.attrs !== undefined ? { attrs: fields.attrs } : {}),
  };
}

/** Serializes a blueprint with a leading comment line. */
export function serializeBlueprint(header: string, blueprint: Blueprint): string {
  // aliasDuplicateObjects: false, or a value used twice would become an anchor and alias.
  const doc = new YAML.Document(blueprint, { customTags: BLUEPRINT_TAGS, aliasDuplicateObjects: false });
  doc.commentBefore = ` ${header}`;
  // lineWidth 0: never fold a long value (a regex, a URL) over lines.
  return doc.toString({ lineWidth: 0 });
}

/** Parses blueprint text with edgeplane's tags, into plain values with Find/KeyOf instances. */
export function parseBlueprint(text: string): unknown {
  return YAML.parse(text, { customTags: BLUEPRINT_TAGS });
}
