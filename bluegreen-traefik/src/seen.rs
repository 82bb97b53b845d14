//! What Traefik's API shows of a router's routes: one look (the weighted service first, then
//! everything else at once), then a verdict (a pure function of what was seen).

use bluegreen_core::router::Routes;
use bluegreen_core::{Result, Slot};

use crate::api::{RouterInfo, ServiceInfo, TraefikApi};
use crate::config::TraefikConfig;
use crate::render::{server_url, weighted_children, WeightedRef};

/// What the API shows compared with the routes being confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Serving them.
    Live,
    /// Not yet (the previous definition, or servers not up); why.
    Pending(String),
    /// Traefik has the new definition and disabled it; its errors.
    Rejected(String),
}

/// The answers of one look at the API; each request's own outcome, so that [`judge`] meets
/// errors in the order a request-by-request check would.
#[derive(Debug)]
pub(crate) struct Look {
    service: Result<Option<ServiceInfo>>,
    /// `None` when not asked: the weights were not live yet.
    router: Option<Result<Option<RouterInfo>>>,
    /// The services of the slots to check (see [`slots_to_check`]), by API name.
    slots: Vec<(Slot, String, Result<Option<ServiceInfo>>)>,
}

/// The slots whose own services are checked: every slot with endpoints, except, in hybrid
/// mode, a slot without traffic (its container may be gone; the file does not reference it).
fn slots_to_check(config: &TraefikConfig, routes: &Routes) -> Vec<Slot> {
    Slot::BOTH
        .into_iter()
        .filter(|slot| routes.endpoints(*slot).is_some())
        .filter(|slot| config.discovered_provider.is_none() || routes.split().weight(*slot) > 0)
        .collect()
}

/// The weights the weighted service shows.
fn live_weights(service: &ServiceInfo) -> Vec<WeightedRef> {
    service
        .weighted
        .as_ref()
        .map(|w| w.services.clone())
        .unwrap_or_default()
}

/// Asks the API for the weighted service; once it shows the weights of `routes`, for the router
/// and the slots' services, all at once. While a change is loading, a look is one request (as
/// cheap for Traefik, which is reloading, as a script's poll); the look that sees it live costs
/// two round trips, not four.
pub(crate) async fn look(api: &TraefikApi, config: &TraefikConfig, routes: &Routes) -> Look {
    let service_name = format!("{}@file", config.service_name());
    let service = api.service(&service_name).await;
    let weights_live = matches!(&service, Ok(Some(s)) if live_weights(s) == weighted_children(config, routes));
    if !weights_live {
        return Look {
            service,
            router: None,
            slots: Vec::new(),
        };
    }
    let slot_names: Vec<(Slot, String)> = slots_to_check(config, routes)
        .into_iter()
        .map(|slot| (slot, config.slot_api_name(slot)))
        .collect();
    let slot_service = |i: usize| {
        let name = slot_names.get(i).map(|(_, name)| name.as_str());
        async move {
            match name {
                Some(name) => Some(api.service(name).await),
                None => None,
            }
        }
    };
    let router_name = format!("{}@file", config.router_name());
    let (router, first, second) = tokio::join!(api.router(&router_name), slot_service(0), slot_service(1));
    let slots = slot_names
        .iter()
        .zip([first, second])
        .filter_map(|((slot, name), answer)| answer.map(|answer| (*slot, name.clone(), answer)))
        .collect();
    Look {
        service,
        router: Some(router),
        slots,
    }
}

/// Whether `look` shows `routes` served: the weighted service with exactly the weights of
/// `routes`; the router with this config's rule, service and entrypoints; both enabled (else
/// [`Seen::Rejected`] with Traefik's errors); each slot's service with exactly the slot's
/// servers, one per instance, whatever their order (file mode), or a server up (hybrid mode); and
/// every server of a slot with traffic `UP`.
///
/// # Errors
/// The first failed request, in the order weighted service, router, slots — reached only if
/// everything before it was as expected.
pub(crate) fn judge(config: &TraefikConfig, routes: &Routes, look: Look) -> Result<Seen> {
    let Some(service) = look.service? else {
        return Ok(Seen::Pending("weighted service not loaded".into()));
    };
    let live = live_weights(&service);
    if live != weighted_children(config, routes) {
        return Ok(Seen::Pending(format!("weights live are {live:?}")));
    }
    let Some(router) = look.router.transpose()?.flatten() else {
        return Ok(Seen::Pending("router not loaded".into()));
    };
    let entry_points_match = config.entry_points.is_empty() || router.entry_points == config.entry_points;
    if router.rule != config.rule || router.service != config.service_name() || !entry_points_match {
        return Ok(Seen::Pending(format!(
            "router still has rule {:?}, service {:?}, entrypoints {:?}",
            router.rule, router.service, router.entry_points
        )));
    }
    if !router.enabled() || !service.enabled() {
        let errors: Vec<_> = router.error.iter().chain(&service.error).cloned().collect();
        return Ok(Seen::Rejected(errors.join("; ")));
    }
    for (slot, name, answer) in look.slots {
        let Some(child) = answer? else {
            return Ok(Seen::Pending(format!("service {name} not loaded")));
        };
        if config.discovered_provider.is_some() {
            if !child.enabled() || !child.server_status.values().any(|s| s == "UP") {
                return Ok(Seen::Pending(format!("service {name} has no server up")));
            }
            continue;
        }
        let Some(endpoints) = routes.endpoints(slot) else {
            continue;
        };
        let urls: Vec<String> = endpoints.iter().map(server_url).collect();
        if !same_set(&child.server_urls(), &urls) {
            return Ok(Seen::Pending(format!(
                "service {name} has servers {:?}, not {urls:?}",
                child.server_urls()
            )));
        }
        if routes.split().weight(slot) > 0 {
            if let Some(down) = urls.iter().find(|url| !child.is_up(url)) {
                return Ok(Seen::Pending(format!("server {down} of {name} is not UP")));
            }
        }
    }
    Ok(Seen::Live)
}

/// Whether the servers Traefik shows are exactly `expected`: what a load balancer serves is a set
/// (the API may list servers in another order than the file), so neither a missing nor an extra
/// one passes.
fn same_set(shown: &[&str], expected: &[String]) -> bool {
    shown.len() == expected.len()
        && expected.iter().all(|url| shown.contains(&url.as_str()))
        && shown.iter().all(|url| expected.iter().any(|e| e == url))
}

#[cfg(test)]
mod tests {
    use bluegreen_core::{AppName, Endpoint, Endpoints, Error, TrafficSplit};

    use super::*;

    fn config() -> TraefikConfig {
        TraefikConfig::new(AppName::new("shop").unwrap(), "/d", "Host(`shop`)")
    }

    fn routes(blue: u8) -> Routes {
        Routes::new(
            TrafficSplit::new(blue, 100 - blue).unwrap(),
            Some(Endpoint::new("127.0.0.1", 8081).unwrap().into()),
            Some(Endpoint::new("127.0.0.1", 8082).unwrap().into()),
        )
        .unwrap()
    }

    fn json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    /// What Traefik's API answers when it serves `blue`/`100 - blue` of `routes(blue)`.
    fn serving(blue: u8) -> Look {
        let slot = |port: u16| {
            let url = format!("http://127.0.0.1:{port}");
            Ok(Some(json(serde_json::json!({
                "status": "enabled",
                "loadBalancer": {"servers": [{"url": url}]},
                "serverStatus": {url: "UP"},
            }))))
        };
        Look {
            router: Some(Ok(Some(json(serde_json::json!({
                "rule": "Host(`shop`)", "service": "shop", "status": "enabled",
            }))))),
            service: Ok(Some(json(serde_json::json!({
                "status": "enabled",
                "weighted": {"services": [
                    {"name": "shop-blue", "weight": blue},
                    {"name": "shop-green", "weight": 100 - blue},
                ]},
            })))),
            slots: vec![
                (Slot::Blue, "shop-blue@file".into(), slot(8081)),
                (Slot::Green, "shop-green@file".into(), slot(8082)),
            ],
        }
    }

    #[test]
    fn live_only_when_every_part_shows_the_routes() {
        assert_eq!(judge(&config(), &routes(90), serving(90)).unwrap(), Seen::Live);
        assert!(matches!(
            judge(&config(), &routes(90), serving(100)).unwrap(),
            Seen::Pending(why) if why.starts_with("weights live are")
        ));
        let mut down = serving(90);
        if let Some((_, _, Ok(Some(child)))) = down.slots.get_mut(1) {
            child
                .server_status
                .insert("http://127.0.0.1:8082".into(), "DOWN".into());
        }
        assert!(matches!(
            judge(&config(), &routes(90), down).unwrap(),
            Seen::Pending(why) if why.contains("is not UP")
        ));
    }

    /// Routes of 3 blue and 3 green instances, and what Traefik's API shows when it serves them
    /// (servers listed in `shown` order, with their status).
    fn replicas(blue: u8, shown: &[(u16, &str)]) -> (Routes, Look) {
        let at = |ports: [u16; 3]| Endpoints::new(ports.map(|p| Endpoint::new("127.0.0.1", p).unwrap())).unwrap();
        let routes = Routes::new(
            TrafficSplit::new(blue, 100 - blue).unwrap(),
            Some(at([8081, 8083, 8085])),
            Some(at([8082, 8084, 8086])),
        )
        .unwrap();
        let mut look = serving(blue);
        let slot = |odd: bool| {
            let listed: Vec<_> = shown.iter().filter(|(p, _)| (p % 2 == 1) == odd).collect();
            let servers: Vec<_> = listed
                .iter()
                .map(|(p, _)| serde_json::json!({"url": format!("http://127.0.0.1:{p}")}))
                .collect();
            let status: serde_json::Map<_, _> = listed
                .iter()
                .map(|(p, s)| (format!("http://127.0.0.1:{p}"), serde_json::json!(s)))
                .collect();
            Ok(Some(json(serde_json::json!({
                "status": "enabled",
                "loadBalancer": {"servers": servers},
                "serverStatus": status,
            }))))
        };
        look.slots = vec![
            (Slot::Blue, "shop-blue@file".into(), slot(true)),
            (Slot::Green, "shop-green@file".into(), slot(false)),
        ];
        (routes, look)
    }

    #[test]
    fn every_instance_of_a_slot_must_be_served_and_up() {
        let all_up = [8085, 8081, 8083, 8086, 8084, 8082].map(|p| (p, "UP"));
        // Another order than the file's is the same set of servers.
        let (routes, look) = replicas(90, &all_up);
        assert_eq!(judge(&config(), &routes, look).unwrap(), Seen::Live);
        // One instance missing, one extra, one replaced: not live.
        for shown in [
            &all_up[1..],
            &[all_up.as_slice(), &[(8087, "UP")]].concat()[..],
            &[
                (8081, "UP"),
                (8083, "UP"),
                (8087, "UP"),
                (8082, "UP"),
                (8084, "UP"),
                (8086, "UP"),
            ][..],
        ] {
            let (routes, look) = replicas(90, shown);
            let seen = judge(&config(), &routes, look).unwrap();
            assert!(
                matches!(&seen, Seen::Pending(why) if why.contains("has servers")),
                "{shown:?}: {seen:?}"
            );
        }
        // Any server of a slot with traffic down: not live; of a slot at 0 %: live.
        let mut one_down = all_up;
        one_down[1] = (8081, "DOWN");
        let (routes, look) = replicas(0, &one_down);
        assert_eq!(judge(&config(), &routes, look).unwrap(), Seen::Live);
        let (routes, look) = replicas(90, &one_down);
        assert!(matches!(
            judge(&config(), &routes, look).unwrap(),
            Seen::Pending(why) if why.contains("127.0.0.1:8081") && why.contains("is not UP")
        ));
    }

    #[test]
    fn a_disabled_definition_is_rejected_with_traefiks_errors() {
        let mut look = serving(90);
        if let Ok(Some(service)) = &mut look.service {
            service.status = "disabled".into();
            service.error = vec!["the service \"shop-green@file\" does not exist".into()];
        }
        assert_eq!(
            judge(&config(), &routes(90), look).unwrap(),
            Seen::Rejected("the service \"shop-green@file\" does not exist".into())
        );
    }

    #[test]
    fn errors_count_in_request_order() {
        // A slot's request failed, but the weights are not live yet: that is the verdict.
        let mut look = serving(100);
        look.slots[0].2 = Err(Error::backend("traefik", "reset", true));
        assert!(matches!(judge(&config(), &routes(90), look).unwrap(), Seen::Pending(_)));
        // Weights not live, so nothing else was asked: pending, whatever the rest would say.
        let mut look = serving(100);
        look.router = None;
        look.slots.clear();
        assert!(matches!(
            judge(&config(), &routes(90), look).unwrap(),
            Seen::Pending(why) if why.starts_with("weights live are")
        ));
        // Everything else as expected: the failed request is the answer.
        let mut look = serving(90);
        look.slots[0].2 = Err(Error::backend("traefik", "reset", true));
        assert!(judge(&config(), &routes(90), look).is_err());
    }
}
