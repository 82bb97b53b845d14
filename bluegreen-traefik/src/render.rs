//! The dynamic config file: rendered from [`Routes`] and parsed back, without I/O.
//!
//! File mode: a router, a weighted service over `<service>-blue` and `<service>-green` (the
//! slots' weights), and each of those a load balancer over every endpoint of the slot, one server
//! per instance in order (Traefik spreads the slot's share evenly over them). A slot without
//! endpoints is left out; a slot with endpoints and weight 0 stays in with weight 0 (Traefik
//! sends it nothing), so the file reads back as the same [`Routes`].
//!
//! Hybrid mode: the slots' services come from another provider (`<service>-blue@docker`); the
//! file holds the router and the weighted service only. A reference to a service that does not
//! exist disables the whole router in Traefik, so slots at weight 0 are left out, and the
//! endpoints are kept in `# bluegreen-endpoint` comment lines (one per instance, in order) for
//! reading back.

use std::collections::BTreeMap;

use bluegreen_core::{Endpoint, Endpoints, Error, Result, Routes, Slot, TrafficSplit};
use serde::{Deserialize, Serialize};

use crate::config::{FileFormat, TraefikConfig};

const HEADER: &str = "# Written by bluegreen-traefik: replaced whole on every switch, do not edit.\n";
const ENDPOINT_MARK: &str = "# bluegreen-endpoint ";

/// Traefik's dynamic configuration, as much of it as this router writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dynamic {
    pub(crate) http: Http,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Http {
    pub(crate) routers: BTreeMap<String, RouterDef>,
    pub(crate) services: BTreeMap<String, ServiceDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RouterDef {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) entry_points: Vec<String>,
    pub(crate) rule: String,
    pub(crate) service: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ServiceDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) weighted: Option<Weighted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) load_balancer: Option<LoadBalancer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Weighted {
    pub(crate) services: Vec<WeightedRef>,
}

/// One child of the weighted service: its name as written and its weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WeightedRef {
    pub(crate) name: String,
    pub(crate) weight: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LoadBalancer {
    pub(crate) servers: Vec<Server>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) health_check: Option<HealthCheckDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Server {
    pub(crate) url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthCheckDef {
    path: String,
    interval: String,
    timeout: String,
}

/// The weighted service's children for `routes`, in the order written: what the API must show.
pub(crate) fn weighted_children(config: &TraefikConfig, routes: &Routes) -> Vec<WeightedRef> {
    Slot::BOTH
        .into_iter()
        .filter(|slot| routes.endpoints(*slot).is_some())
        .filter(|slot| config.discovered_provider.is_none() || routes.split().weight(*slot) > 0)
        .map(|slot| WeightedRef {
            name: config.slot_reference(slot),
            weight: routes.split().weight(slot),
        })
        .collect()
}

/// The load balancer a slot's service has in file mode: a server per instance, in order.
pub(crate) fn load_balancer(config: &TraefikConfig, endpoints: &Endpoints) -> LoadBalancer {
    LoadBalancer {
        servers: endpoints.iter().map(|e| Server { url: server_url(e) }).collect(),
        health_check: config.health_check.as_ref().map(|hc| HealthCheckDef {
            path: hc.path.clone(),
            interval: format!("{}ms", hc.interval.as_millis()),
            timeout: format!("{}ms", hc.timeout.as_millis()),
        }),
    }
}

/// The URL Traefik is given (and reports back) for an endpoint.
pub(crate) fn server_url(endpoint: &Endpoint) -> String {
    endpoint.url("")
}

/// The dynamic config for `routes`, as `config`'s file should hold it.
pub(crate) fn dynamic(config: &TraefikConfig, routes: &Routes) -> Dynamic {
    let router = RouterDef {
        entry_points: config.entry_points.clone(),
        rule: config.rule.clone(),
        service: config.service_name().to_owned(),
    };
    let mut services = BTreeMap::new();
    services.insert(
        config.service_name().to_owned(),
        ServiceDef {
            weighted: Some(Weighted {
                services: weighted_children(config, routes),
            }),
            load_balancer: None,
        },
    );
    if config.discovered_provider.is_none() {
        for slot in Slot::BOTH {
            if let Some(endpoints) = routes.endpoints(slot) {
                services.insert(
                    config.slot_service(slot),
                    ServiceDef {
                        weighted: None,
                        load_balancer: Some(load_balancer(config, endpoints)),
                    },
                );
            }
        }
    }
    Dynamic {
        http: Http {
            routers: BTreeMap::from([(config.router_name().to_owned(), router)]),
            services,
        },
    }
}

/// Renders the file for `routes`.
pub(crate) fn render(config: &TraefikConfig, routes: &Routes) -> Result<Vec<u8>> {
    let body = match config.format {
        FileFormat::Toml => toml::to_string_pretty(&dynamic(config, routes)).map_err(|e| render_error(config, e))?,
        FileFormat::Yaml => {
            serde_json::to_string_pretty(&dynamic(config, routes)).map_err(|e| render_error(config, e))? + "\n"
        }
    };
    let mut out = String::from(HEADER);
    if config.discovered_provider.is_some() {
        for slot in Slot::BOTH {
            for endpoint in routes.endpoints(slot).into_iter().flatten() {
                out.push_str(&format!("{ENDPOINT_MARK}{slot} {}\n", server_url(endpoint)));
            }
        }
    }
    out.push_str(&body);
    Ok(out.into_bytes())
}

/// Reads `bytes` (a file this router wrote) back into the routes it serves.
pub(crate) fn parse(config: &TraefikConfig, bytes: &[u8]) -> Result<Routes> {
    let text = std::str::from_utf8(bytes).map_err(|e| unreadable(config, e))?;
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let dynamic: Dynamic = match config.format {
        FileFormat::Toml => toml::from_str(&body).map_err(|e| unreadable(config, e))?,
        FileFormat::Yaml => serde_json::from_str(&body).map_err(|e| unreadable(config, e))?,
    };
    let weighted = dynamic
        .http
        .services
        .get(config.service_name())
        .and_then(|s| s.weighted.as_ref())
        .ok_or_else(|| unreadable(config, format!("no weighted service {:?}", config.service_name())))?;
    let mut weights = BTreeMap::new();
    for child in &weighted.services {
        let slot = Slot::BOTH
            .into_iter()
            .find(|s| config.slot_reference(*s) == child.name)
            .ok_or_else(|| {
                unreadable(
                    config,
                    format!("unknown service {:?} in the weighted service", child.name),
                )
            })?;
        weights.insert(slot, child.weight);
    }
    let weight = |slot| weights.get(&slot).copied().unwrap_or(0);
    let split = TrafficSplit::new(weight(Slot::Blue), weight(Slot::Green)).map_err(|e| unreadable(config, e))?;
    let endpoints = match config.discovered_provider {
        Some(_) => endpoints_from_comments(config, text)?,
        None => endpoints_from_services(config, &dynamic, &weights)?,
    };
    Routes::new(
        split,
        endpoints.get(&Slot::Blue).cloned(),
        endpoints.get(&Slot::Green).cloned(),
    )
    .map_err(|e| unreadable(config, e))
}

fn endpoints_from_services(
    config: &TraefikConfig,
    dynamic: &Dynamic,
    weights: &BTreeMap<Slot, u8>,
) -> Result<BTreeMap<Slot, Endpoints>> {
    let mut endpoints = BTreeMap::new();
    for slot in weights.keys() {
        let name = config.slot_service(*slot);
        let servers = dynamic
            .http
            .services
            .get(&name)
            .and_then(|s| s.load_balancer.as_ref())
            .map(|lb| lb.servers.as_slice())
            .unwrap_or_default();
        if servers.is_empty() {
            return Err(unreadable(config, format!("service {name:?} has no server")));
        }
        let read = servers
            .iter()
            .map(|s| Endpoint::parse_url(&s.url))
            .collect::<Result<Vec<_>>>()
            .and_then(Endpoints::new)
            .map_err(|e| unreadable(config, format!("service {name:?}: {e}")))?;
        endpoints.insert(*slot, read);
    }
    Ok(endpoints)
}

fn endpoints_from_comments(config: &TraefikConfig, text: &str) -> Result<BTreeMap<Slot, Endpoints>> {
    let mut lines: BTreeMap<Slot, Vec<Endpoint>> = BTreeMap::new();
    for line in text.lines().filter_map(|l| l.strip_prefix(ENDPOINT_MARK)) {
        let (slot, url) = line
            .split_once(' ')
            .ok_or_else(|| unreadable(config, format!("bad endpoint line {line:?}")))?;
        let slot = Slot::BOTH
            .into_iter()
            .find(|s| s.as_str() == slot)
            .ok_or_else(|| unreadable(config, format!("bad slot in endpoint line {line:?}")))?;
        let endpoint = Endpoint::parse_url(url).map_err(|e| unreadable(config, e))?;
        lines.entry(slot).or_default().push(endpoint);
    }
    lines
        .into_iter()
        .map(|(slot, list)| {
            let endpoints = Endpoints::new(list).map_err(|e| unreadable(config, format!("{slot}: {e}")))?;
            Ok((slot, endpoints))
        })
        .collect()
}

/// What failed to render; `e`, why, is the source.
fn render_error(config: &TraefikConfig, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::backend_caused_by(
        "traefik",
        format!("cannot render {}", config.file_path().display()),
        false,
        e,
    )
}

/// A file this router cannot read back; `e`, what is wrong with it, is the source.
fn unreadable(config: &TraefikConfig, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::backend_caused_by(
        "traefik",
        format!(
            "{} is not a file bluegreen-traefik can read back (adopt it to replace it)",
            config.file_path().display()
        ),
        false,
        e,
    )
}

#[cfg(test)]
mod tests {
    use bluegreen_core::{AppName, Scheme};

    use super::*;
    use crate::config::HealthCheck;

    fn config(format: FileFormat, provider: Option<&str>) -> TraefikConfig {
        let mut cfg = TraefikConfig::new(AppName::new("shop").unwrap(), "/watched", "Host(`shop.localhost`)");
        cfg.format = format;
        cfg.entry_points = vec!["web".into()];
        cfg.discovered_provider = provider.map(str::to_owned);
        cfg
    }

    fn endpoints() -> (Endpoint, Endpoint) {
        (
            Endpoint::new("127.0.0.1", 8081).unwrap(),
            Endpoint::new("::1", 8082).unwrap().with_scheme(Scheme::Https),
        )
    }

    fn all_routes() -> Vec<Routes> {
        let (b, g) = endpoints();
        let mut routes = vec![
            Routes::only(Slot::Blue, b.clone()),
            Routes::only(Slot::Green, g.clone()),
        ];
        for blue in [100, 90, 50, 10, 1, 0] {
            let split = TrafficSplit::new(blue, 100 - blue).unwrap();
            routes.push(Routes::new(split, Some(b.clone().into()), Some(g.clone().into())).unwrap());
        }
        routes.push(Routes::new(TrafficSplit::all(Slot::Blue), Some(b.into()), None).unwrap());
        // Three instances in blue, two in green, in an order that is not sorted.
        let many =
            |ports: &[u16]| Endpoints::new(ports.iter().map(|p| Endpoint::new("127.0.0.1", *p).unwrap())).unwrap();
        for blue in [100, 90, 0] {
            let split = TrafficSplit::new(blue, 100 - blue).unwrap();
            let (b3, g2) = (many(&[8083, 8081, 8082]), many(&[9002, 9001]));
            routes.push(Routes::new(split, Some(b3), Some(g2)).unwrap());
        }
        routes.push(Routes::only(Slot::Green, many(&[9003, 9001, 9002])));
        routes
    }

    #[test]
    fn every_routes_round_trips_in_every_mode_and_format() {
        for format in [FileFormat::Toml, FileFormat::Yaml] {
            for provider in [None, Some("docker")] {
                let cfg = config(format, provider);
                for routes in all_routes() {
                    let bytes = render(&cfg, &routes).unwrap();
                    let back = parse(&cfg, &bytes).unwrap_or_else(|e| {
                        panic!(
                            "{format:?} {provider:?} {routes:?}: {e}\n{}",
                            String::from_utf8_lossy(&bytes)
                        )
                    });
                    assert_eq!(back, routes, "{}", String::from_utf8_lossy(&bytes));
                }
            }
        }
    }

    #[test]
    fn renders_the_traefik_file_shape() {
        let mut cfg = config(FileFormat::Toml, None);
        cfg.health_check = Some(HealthCheck::new("/health"));
        let (b, g) = endpoints();
        let routes = Routes::new(TrafficSplit::new(90, 10).unwrap(), Some(b.into()), Some(g.into())).unwrap();
        let text = String::from_utf8(render(&cfg, &routes).unwrap()).unwrap();
        for expected in [
            "[http.routers.shop]",
            "entryPoints = [\"web\"]",
            "rule = \"Host(`shop.localhost`)\"",
            "service = \"shop\"",
            "[[http.services.shop.weighted.services]]",
            "name = \"shop-blue\"\nweight = 90",
            "name = \"shop-green\"\nweight = 10",
            "url = \"http://127.0.0.1:8081\"",
            "url = \"https://[::1]:8082\"",
            "path = \"/health\"",
            "interval = \"1000ms\"",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn hybrid_mode_references_discovered_services_and_leaves_out_weight_zero() {
        let cfg = config(FileFormat::Toml, Some("docker"));
        let (b, g) = endpoints();
        let routes = Routes::new(TrafficSplit::all(Slot::Green), Some(b.into()), Some(g.into())).unwrap();
        let text = String::from_utf8(render(&cfg, &routes).unwrap()).unwrap();
        assert!(text.contains("name = \"shop-green@docker\"\nweight = 100"), "{text}");
        assert!(!text.contains("shop-blue@docker"), "{text}");
        assert!(!text.contains("loadBalancer"), "{text}");
        assert!(
            text.contains("# bluegreen-endpoint blue http://127.0.0.1:8081"),
            "{text}"
        );
    }

    #[test]
    fn every_instance_is_a_server_of_its_slots_service_in_canonical_order() {
        let many =
            |ports: &[u16]| Endpoints::new(ports.iter().map(|p| Endpoint::new("127.0.0.1", *p).unwrap())).unwrap();
        let routes = Routes::new(
            TrafficSplit::new(90, 10).unwrap(),
            Some(many(&[8083, 8081, 8082])),
            Some(many(&[9001, 9002])),
        )
        .unwrap();
        let cfg = config(FileFormat::Toml, None);
        let dynamic = dynamic(&cfg, &routes);
        let urls = |service: &str| -> Vec<String> {
            let lb = dynamic.http.services[service].load_balancer.as_ref().unwrap();
            lb.servers.iter().map(|s| s.url.clone()).collect()
        };
        assert_eq!(
            urls("shop-blue"),
            [
                "http://127.0.0.1:8081",
                "http://127.0.0.1:8082",
                "http://127.0.0.1:8083"
            ]
        );
        assert_eq!(urls("shop-green"), ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]);
        // The slots keep their weights: Traefik spreads each slot's share over its servers.
        let weights: Vec<u8> = dynamic.http.services["shop"]
            .weighted
            .as_ref()
            .unwrap()
            .services
            .iter()
            .map(|w| w.weight)
            .collect();
        assert_eq!(weights, [90, 10]);
        // Hybrid mode keeps every instance in comment lines, in order.
        let hybrid = config(FileFormat::Toml, Some("docker"));
        let text = String::from_utf8(render(&hybrid, &routes).unwrap()).unwrap();
        assert!(
            text.contains(
                "# bluegreen-endpoint blue http://127.0.0.1:8081\n\
                 # bluegreen-endpoint blue http://127.0.0.1:8082\n\
                 # bluegreen-endpoint blue http://127.0.0.1:8083\n\
                 # bluegreen-endpoint green http://127.0.0.1:9001\n"
            ),
            "{text}"
        );
        // A server named twice in a slot is no file of ours.
        let twice = String::from_utf8(render(&cfg, &routes).unwrap())
            .unwrap()
            .replace("http://127.0.0.1:8082", "http://127.0.0.1:8081");
        let err = parse(&cfg, twice.as_bytes()).unwrap_err();
        assert!(format!("{err:?}").contains("twice"), "{err:?}");
    }

    #[test]
    fn yaml_output_is_json_which_is_yaml() {
        let cfg = config(FileFormat::Yaml, None);
        let bytes = render(&cfg, &all_routes()[2]).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let body: String = text.lines().filter(|l| !l.starts_with('#')).collect();
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            value["http"]["services"]["shop"]["weighted"]["services"][0]["weight"],
            100
        );
    }

    #[test]
    fn a_file_that_is_not_ours_is_a_conflict_naming_it() {
        let cfg = config(FileFormat::Toml, None);
        for bad in [
            "garbage [[[",
            "[http.routers]\n[http.services]\n",
            "[http.routers.x]\nrule=\"r\"\nservice=\"s\"\nfoo=1\n",
        ] {
            let err = parse(&cfg, bad.as_bytes()).unwrap_err();
            assert!(
                matches!(&err, Error::Backend { message, temporary: false, .. } if message.contains("/watched/shop.toml")),
                "{bad}: {err}"
            );
        }
        let weights_not_100 = String::from_utf8(render(&cfg, &all_routes()[2]).unwrap())
            .unwrap()
            .replace("weight = 100", "weight = 3");
        assert!(parse(&cfg, weights_not_100.as_bytes()).is_err());
    }

    #[test]
    fn server_urls_parse_back() {
        let (b, g) = endpoints();
        assert_eq!(Endpoint::parse_url(&server_url(&b)).unwrap(), b);
        assert_eq!(Endpoint::parse_url(&server_url(&g)).unwrap(), g);
        assert!(Endpoint::parse_url("ftp://x:1").is_err());
        assert!(Endpoint::parse_url("http://x/path").is_err());
        assert!(Endpoint::parse_url("http://x;y:80").is_err());
    }
}
