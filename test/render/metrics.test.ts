/**
 * The generated Prometheus scrape config points at exactly the endpoints the rendered
 * files serve: Envoy's metrics listener, and each pod's published Caddy metrics port.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import YAML from "yaml";
import { metricsListener } from "../../components/ingress/render";
import { renderPrometheusScrapeConfig } from "../../components/metrics/render";
import { renderPodFiles } from "../../components/pod/render";
import type { Model } from "../../model/types";
import { fixtures } from "../fixtures/models";

type Obj = Record<string, any>;

/** What the rendered files serve: `address:port` → the path of its metrics. */
function servedEndpoints(model: Model): Map<string, string> {
  const served = new Map<string, string>();
  const metrics: Obj = metricsListener(model);
  const { address, port_value } = metrics.address.socket_address;
  const route = metrics.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0];
  served.set(`${address}:${port_value}`, route.match.path);
  for (const service of model.services) {
    const files = renderPodFiles(model, service);
    const pod = files.find((f) => f.path.endsWith(`/${service.name}.pod`))!.content;
    const caddyfile = files.find((f) => f.path.endsWith("/Caddyfile"))!.content;
    for (const [, host, hostPort, podPort] of pod.matchAll(/^PublishPort=([\d.]+):(\d+):(\d+)$/gm)) {
      // A published port that reaches a plain-HTTP Caddy site serving metrics.
      const site = caddyfile.match(new RegExp(`^http://:${podPort} \\{\\n\\tmetrics (\\S+)\\n\\}$`, "m"));
      if (site) served.set(`${host}:${hostPort}`, site[1]!);
    }
  }
  return served;
}

describe("Prometheus scrape config", () => {
  for (const [name, model] of Object.entries(fixtures)) {
    it(`${name}: scrapes every metrics endpoint the rendered files serve, at its path, and nothing else`, () => {
      const doc = YAML.parse(renderPrometheusScrapeConfig(model));
      const scraped = new Map<string, string>();
      for (const job of doc.scrape_configs as Obj[])
        for (const group of job.static_configs) for (const target of group.targets) scraped.set(target, job.metrics_path);
      assert.deepEqual(new Map([...scraped].sort()), new Map([...servedEndpoints(model)].sort()));
    });

    it(`${name}: labels each Caddy target with its service and host`, () => {
      const doc = YAML.parse(renderPrometheusScrapeConfig(model));
      const caddy = (doc.scrape_configs as Obj[]).find((j) => j.job_name === "edgeplane-caddy")!;
      assert.deepEqual(
        caddy.static_configs.map((g: Obj) => g.labels.service),
        model.services.map((s) => s.name),
      );
      for (const g of caddy.static_configs)
        assert.equal(g.labels.host, model.services.find((s) => s.name === g.labels.service)!.host);
    });
  }

  it("only ever targets tailnet addresses", () => {
    for (const model of Object.values(fixtures)) {
      const doc = YAML.parse(renderPrometheusScrapeConfig(model));
      for (const job of doc.scrape_configs as Obj[])
        for (const group of job.static_configs)
          for (const target of group.targets) assert.match(target, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+:\d+$/);
    }
  });
});
