//! A canary judged by a real Prometheus: demo-app slots as processes behind a real nginx, a real
//! Prometheus scraping each slot's `/metrics`, and a `PrometheusAnalysis` of the new release's
//! error rate between the canary's steps. Shared by `tests/prometheus_canary.rs` and
//! `bench_analysis.rs`, each including it with `#[path]`.

#![allow(dead_code)] // the test and the benchmark use different parts

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bluegreen_core::hook::{CallbackHook, HookContext, Stage};
use bluegreen_core::journal::{Entry, InMemoryJournal};
use bluegreen_core::probe::{Analysis, HttpProbe, PrometheusAnalysis};
use bluegreen_core::{
    AppName, BlueGreen, Canary, CanaryStep, Deployer, DeployerBuilder, Endpoints, HealthPolicy, Phase, Release,
    Retirement, Slot, Timestamp,
};
use bluegreen_nginx::NginxRouter;
use bluegreen_testkit::load::{ClientMode, Load, LoadConfig};
use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::processes::DemoEnvironment;
use bluegreen_testkit::prometheus::{PrometheusProcess, ScrapeTarget};
use bluegreen_testkit::real;

#[path = "nginx.rs"]
mod nginx;

/// The share of the new release's answers that are errors, over the time it has had traffic.
pub const ERROR_RATE: &str = r#"(sum(rate(demo_http_requests_total{version="{release}",code=~"5.."}[{window}])) or vector(0))
  / sum(rate(demo_http_requests_total{version="{release}"}[{window}]))"#;

/// The error rate above which the analysis fails the release.
pub const MAX_ERROR_RATE: f64 = 0.05;

const UPSTREAM: &str = "shop";

/// How fast Prometheus scrapes and the analysis checks.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Prometheus's scrape interval.
    pub scrape: Duration,
    /// Time between two analysis checks.
    pub analysis: Duration,
    /// Checks in one analysis.
    pub checks: u32,
}

impl Pace {
    /// The detection target: two scrapes (so `rate()` has two samples with errors) and one
    /// analysis interval (the next check).
    pub fn target(self) -> Duration {
        2 * self.scrape + self.analysis
    }
}

/// nginx, Prometheus and the demo-app slots, all real, started by [`Rig::start`].
pub struct Rig {
    pub nginx: NginxProcess,
    pub prometheus: Arc<Mutex<PrometheusProcess>>,
    pub env: DemoEnvironment,
    pub journal: InMemoryJournal,
    pub pace: Pace,
    prometheus_url: String,
    router: Arc<NginxRouter>,
}

impl Rig {
    /// Starts nginx and Prometheus (scraping nothing yet), or returns `None` after reporting the
    /// missing component with [`real::unavailable`] (which panics under
    /// `BLUEGREEN_REQUIRE_REAL=1`).
    pub fn start(pace: Pace) -> Option<Rig> {
        let nginx = match NginxProcess::start(UPSTREAM) {
            Ok(nginx) => nginx,
            Err(why) => {
                real::unavailable("nginx", why);
                return None;
            }
        };
        let prometheus = match PrometheusProcess::start(&[], pace.scrape) {
            Ok(prometheus) => prometheus,
            Err(why) => {
                real::unavailable("prometheus", why);
                return None;
            }
        };
        let router = nginx::router(&nginx, UPSTREAM).expect("a valid nginx router");
        Some(Rig {
            prometheus_url: prometheus.url(),
            prometheus: Arc::new(Mutex::new(prometheus)),
            nginx,
            env: DemoEnvironment::new(),
            journal: InMemoryJournal::new(),
            pace,
            router: Arc::new(router),
        })
    }

    /// Prometheus, for a moment (to stop it, or query it).
    pub fn prometheus(&self) -> MutexGuard<'_, PrometheusProcess> {
        self.prometheus.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A deployer of app `shop` over the rig: health-gated on `/health/ready`, the new slot
    /// registered with Prometheus before it takes traffic, a rollback window of zero.
    pub fn builder(&self) -> DeployerBuilder {
        Deployer::builder(AppName::new("shop").unwrap())
            .environment(Arc::new(self.env.clone()))
            .router(self.router.clone())
            .probe(Arc::new(HttpProbe::new("/health/ready").unwrap()))
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(100))
                    .failure_threshold(3),
            )
            .retirement(
                Retirement::new()
                    .rollback_window(Duration::ZERO)
                    .drain(Duration::from_millis(200))
                    .stop_grace(Duration::from_secs(2)),
            )
            .journal(Arc::new(self.journal.clone()))
            // A hold (inconclusive checks) never waits for ever: no approval comes in a test.
            .approval_timeout(Duration::from_secs(10))
            .hook(Stage::BeforeTraffic, scrape_new_slot(self.prometheus.clone()))
    }

    /// Deploys `version` blue-green, with no analysis (the release everything starts from).
    pub async fn deploy_first(&self, version: &str) {
        let deployer = self.builder().strategy(BlueGreen::new()).build().unwrap();
        deployer
            .deploy(release(version))
            .await
            .expect("the first release goes live");
    }

    /// The error-rate analysis: `checks` checks `pace.analysis` apart, no failure tolerated, two
    /// provider errors tolerated (a third makes it inconclusive).
    pub fn analysis(&self) -> Analysis {
        let query = PrometheusAnalysis::new(&self.prometheus_url, ERROR_RATE)
            .expect("a valid query")
            .fails_above(MAX_ERROR_RATE)
            .min_window(3 * self.pace.scrape)
            .timeout(Duration::from_secs(2));
        Analysis::new(Arc::new(query))
            .count(self.pace.checks)
            .interval(self.pace.analysis)
            .failure_limit(0)
            .inconclusive_limit(2)
            .timeout(Duration::from_secs(3))
    }

    /// 10 %, analysis, 50 %, analysis, then all traffic.
    pub fn canary(&self) -> Canary {
        Canary::new(vec![
            CanaryStep::SetWeight(10),
            CanaryStep::Analyse(self.analysis()),
            CanaryStep::SetWeight(50),
            CanaryStep::Analyse(self.analysis()),
        ])
        .expect("a valid canary")
    }

    /// Steady load through nginx: 4 keep-alive clients retrying idempotent requests (nginx's
    /// reloads close idle keep-alive connections; retrying clients see no error from it).
    pub fn load(&self) -> Load {
        Load::start(
            LoadConfig::new(self.nginx.addr(), 4, ClientMode::KeepAliveRetrying).pause(Duration::from_millis(5)),
        )
    }

    /// What the journal holds of deployment `id`, oldest first.
    pub fn entries(&self, id: &str) -> Vec<Entry> {
        self.journal
            .entries()
            .into_iter()
            .filter(|e| e.deployment.id() == id)
            .collect()
    }
}

/// How one deployment went, read from its journal entries.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The highest weight the new slot had (confirmed by the router).
    pub max_weight: u8,
    /// Whether it was ever promoted (all traffic).
    pub promoted: bool,
    /// The phases it went through, by name, in order (repeats collapsed).
    pub phases: Vec<&'static str>,
    /// When its slot took traffic.
    pub traffic_since: Option<Timestamp>,
    /// When the analysis failed it: the entry that started rolling back.
    pub rolling_back_at: Option<Timestamp>,
    /// The final phase.
    pub last: Phase,
}

impl Judged {
    /// Reads `entries` (of one deployment, oldest first; at least one).
    pub fn of(entries: &[Entry]) -> Judged {
        let mut phases: Vec<&'static str> = Vec::new();
        for entry in entries {
            let name = entry.deployment.phase().name();
            if phases.last() != Some(&name) {
                phases.push(name);
            }
        }
        let last = entries.last().expect("at least one entry").deployment.clone();
        Judged {
            max_weight: entries.iter().map(|e| e.deployment.weight()).max().unwrap_or(0),
            promoted: entries.iter().any(|e| e.deployment.promoted()),
            phases,
            traffic_since: last.traffic_since(),
            rolling_back_at: entries
                .iter()
                .find(|e| *e.deployment.phase() == Phase::RollingBack)
                .map(|e| e.at),
            last: last.phase().clone(),
        }
    }

    /// From the slot taking traffic to the analysis failing it.
    pub fn detection(&self) -> Option<Duration> {
        let (from, to) = (self.traffic_since?, self.rolling_back_at?);
        to.system_time().duration_since(from.system_time()).ok()
    }
}

pub fn release(version: &str) -> Release {
    Release::new(version).unwrap()
}

/// A hook that makes Prometheus scrape the new slot (and the live one) and waits until it has:
/// a slot's port is known only once it runs, and its metrics must be scraped before it takes
/// traffic for the analysis to see its first errors.
fn scrape_new_slot(prometheus: Arc<Mutex<PrometheusProcess>>) -> CallbackHook {
    CallbackHook::new("scrape the new slot", move |ctx: HookContext| {
        let prometheus = prometheus.clone();
        async move {
            // Every instance of the new slot, then every instance of the live one.
            let new = ctx
                .endpoints
                .as_ref()
                .ok_or_else(|| format!("no endpoint for {}", ctx.slot))?;
            let mut targets = scrape_targets(ctx.slot, new)?;
            if let (Some(slot), Some(endpoints)) = (ctx.previous_slot, ctx.previous_endpoints.as_ref()) {
                targets.extend(scrape_targets(slot, endpoints)?);
            }
            // These very addresses: the slot's previous instances may still have fresh `up` samples.
            let ups: Vec<String> = targets[..new.len()]
                .iter()
                .map(|t| format!("up{{job=\"{}\",instance=\"{}\"}} == 1", t.job, t.addr))
                .collect();
            tokio::task::spawn_blocking(move || {
                let prometheus = prometheus.lock().unwrap_or_else(PoisonError::into_inner);
                prometheus.set_targets(&targets)?;
                for up in &ups {
                    prometheus.wait_for(up, Duration::from_secs(20))?;
                }
                Ok(format!("prometheus scrapes {}", targets[0].addr))
            })
            .await
            .map_err(|e| e.to_string())?
        }
    })
    .timeout(Duration::from_secs(30))
}

fn scrape_targets(slot: Slot, endpoints: &Endpoints) -> Result<Vec<ScrapeTarget>, String> {
    endpoints
        .iter()
        .map(|endpoint| {
            let addr: SocketAddr = format!("{}:{}", endpoint.host(), endpoint.port())
                .parse()
                .map_err(|e| format!("{endpoint} is not a socket address: {e}"))?;
            Ok(ScrapeTarget::new(slot.to_string(), addr))
        })
        .collect()
}
