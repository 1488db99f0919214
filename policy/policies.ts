/**
 * The policies of the edgeplane pack, built from the rules in rules.ts. Kept apart from
 * index.ts (which starts the analyzer) so tests can run them as Pulumi would.
 */
import type { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import {
  API_TOKEN,
  checkApiToken,
  checkCommand,
  checkDnsRecord,
  checkUnitFile,
  COMMAND_TYPES,
  DNS_RECORD,
  ingressAddresses,
  pushedUnitFiles,
} from "./rules";

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
  {
    name: "records-point-at-the-ingress",
    description: "DNS records are not proxied and point only at the ingress host (public, or tailnet for tailnet services).",
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
      const records = args.resources.filter((r) => r.type === DNS_RECORD);
      if (records.length === 0) return;
      const ingress = ingressAddresses(args.resources);
      if (typeof ingress === "string") return reportViolation(ingress);
      for (const record of records) for (const p of checkDnsRecord(record, ingress)) reportViolation(p, record.urn);
    },
  },
  {
    name: "tokens-dns-on-one-zone",
    description: "Each Cloudflare API token may only do DNS (DNS Write, Zone Read) on exactly one zone.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
      if (args.type !== API_TOKEN) return;
      for (const p of checkApiToken(args)) reportViolation(p);
    },
  },
  {
    name: "no-secret-in-command-text",
    description: "Commands carry secrets only on stdin, never in their create, update or delete text.",
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
      if (!COMMAND_TYPES.includes(args.type)) return;
      for (const p of checkCommand(args)) reportViolation(p);
    },
  },
  {
    name: "pods-publish-only-caddy",
    description:
      "No pod publishes its app port: only the pod publishes, only Caddy's 443 (and its metrics site on a tailnet address), and no container uses the host network.",
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
      for (const file of pushedUnitFiles(args.resources)) {
        for (const p of checkUnitFile(file.path, file.content, file.owner, file.metricsPorts)) reportViolation(p);
      }
    },
  },
];
