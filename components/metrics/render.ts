/**
 * The Prometheus scrape config for the stack's metrics endpoints, as a pure function of
 * the model: Envoy's on the ingress host's tailnet address and each pod's Caddy's on
 * its host's tailnet address. A Prometheus on the tailnet (as an admin's node: the
 * tailnet policy lets only admins reach these ports) includes it with
 * `scrape_config_files` or copies its jobs into `scrape_configs`
 * (https://prometheus.io/docs/prometheus/latest/configuration/configuration/).
 */
import YAML from "yaml";
import { hostByName, ingressHost } from "../../model/topology";
import type { Model } from "../../model/types";
import { ENVOY_METRICS_PATH } from "../ingress/render";
import { CADDY_METRICS_PATH } from "../pod/render/caddyfile";

/** Where the file lands on the ingress host (and so in the plan's output). */
export const PROMETHEUS_SCRAPE_PATH = "/etc/edgeplane/prometheus-scrape.yaml";

export function renderPrometheusScrapeConfig(model: Model): string {
  const ingress = ingressHost(model);
  const doc = {
    scrape_configs: [
      {
        job_name: "edgeplane-envoy",
        metrics_path: ENVOY_METRICS_PATH,
        static_configs: [{ targets: [`${ingress.tailnetIP}:${model.envoy.metricsPort}`], labels: { host: ingress.name } }],
      },
      {
        job_name: "edgeplane-caddy",
        metrics_path: CADDY_METRICS_PATH,
        static_configs: model.services.map((s) => ({
          targets: [`${hostByName(model, s.host).tailnetIP}:${s.metricsPort}`],
          labels: { host: s.host, service: s.name },
        })),
      },
    ].filter((job) => job.static_configs.length > 0),
  };
  return (
    `# managed by edgeplane — Prometheus scrape jobs for the metrics of ingress host ${ingress.name} and every pod;\n` +
    "# reachable from tailnet admins' nodes only. Include it with scrape_config_files.\n" +
    YAML.stringify(doc, { lineWidth: 0 })
  );
}
