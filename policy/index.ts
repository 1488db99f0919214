/**
 * edgeplane's guardrails as a Pulumi policy pack:
 *
 *   pulumi preview --policy-pack policy
 *
 * (from the repository root, after `npm ci`). Every policy is mandatory: a preview or
 * up that breaks one fails, naming the resource.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("edgeplane", { policies });
