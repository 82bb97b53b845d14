//! From a loaded config to a [`Deployer`]: the Docker environment, the router, the probes, the
//! strategy, hooks and the state directory — through the library's public API only.
//!
//! A CLI process never waits for a human: the deployer parks at gates (`deploy` returns, exit 6)
//! and once promoted (the old slot stays warm; `rollback` from any shell is instant, and the next
//! command retires it when the window ends).

use std::sync::Arc;

use bluegreen::docker::DockerEnvironment;
use bluegreen::hook::Stage;
use bluegreen::nginx::NginxRouter;
use bluegreen::probe::{AllOf, Analysis, HealthProbe, HttpProbe, TcpProbe};
use bluegreen::traefik::TraefikRouter;
use bluegreen::webhook::Webhook;
use bluegreen::{BlueGreen, Canary, CanaryStep, Deployer, Environment, Promotion, Result, Router};

use crate::config::{
    AnalysisConfig, Config, HooksConfig, Loaded, PauseConfig, ProbeConfig, PromotionConfig, RouterConfig, StepConfig,
    StrategyConfig, WebhookConfig,
};

/// What the commands work with.
pub struct Built {
    /// The engine.
    pub deployer: Deployer,
    /// The environment itself, for `logs` (the deployer does not expose it).
    pub environment: Arc<DockerEnvironment>,
}

/// The `[[webhook]]`s of `loaded`, signed with the secrets their `secret_env`s hold.
///
/// # Errors
/// A `secret_env` that is not set.
pub fn webhooks(loaded: &Loaded) -> Result<Vec<Webhook>> {
    loaded.config.webhook.iter().map(WebhookConfig::webhook).collect()
}

/// Whether the `[docker] registry` password can be read (its `password_env` is set): commands
/// that deploy, and `validate`, check it before anything runs; commands that only read do not.
///
/// # Errors
/// [`bluegreen::Error::Invalid`] naming the variable when it is unset or empty.
pub fn registry_password(loaded: &Loaded) -> Result<()> {
    match &loaded.config.docker.0.registry {
        Some(credentials) => credentials.check_password(),
        None => Ok(()),
    }
}

/// Builds the deployer of `loaded`, acting as `who`.
///
/// # Errors
/// A backend that cannot be set up (the Docker socket
/// does not answer, a router directory is missing), or a strategy the library refuses (a canary
/// weight outside 1..=100).
pub async fn deployer(loaded: &Loaded, who: &str) -> Result<Built> {
    let config = &loaded.config;
    let environment = Arc::new(DockerEnvironment::connect(config.docker.0.clone()).await?);
    let router = router(&config.router)?;
    let probe = probe(&config.probe, &environment)?;
    let mut builder = Deployer::builder(config.app.clone())
        .environment(environment.clone() as Arc<dyn Environment>)
        .router(router)
        .probe(probe.clone())
        .policy(config.health.clone())
        .retirement(config.retirement)
        .state_dir(loaded.state_dir())
        .park_at_gates(true)
        .park_warm(true)
        .adopt_existing_config(config.adopt_existing_config)
        .who(who);
    if let Some(timeout) = config.approval_timeout {
        builder = builder.approval_timeout(timeout);
    }
    if let Some(timeouts) = config.timeouts {
        builder = builder.timeouts(timeouts);
    }
    builder = match &config.strategy {
        StrategyConfig::BlueGreen(bg) => {
            let mut strategy = BlueGreen::new().promotion(match bg.promotion {
                PromotionConfig::Auto => Promotion::Auto,
                PromotionConfig::Manual => Promotion::Manual,
                PromotionConfig::After(delay) => Promotion::AfterDelay(delay),
            });
            if let Some(pre) = &bg.pre_promotion {
                strategy = strategy.pre_promotion(analysis(pre, &probe)?);
            }
            if let Some(post) = &bg.post_promotion {
                strategy = strategy.post_promotion(analysis(post, &probe)?);
            }
            builder.strategy(strategy)
        }
        StrategyConfig::Canary(canary) => {
            let steps = canary
                .steps
                .iter()
                .map(|step| {
                    Ok(match step {
                        StepConfig::Weight(weight) => CanaryStep::SetWeight(*weight),
                        StepConfig::Pause(PauseConfig::For(d)) => CanaryStep::Pause(*d),
                        StepConfig::Pause(PauseConfig::Approval) => CanaryStep::PauseUntilApproved,
                        StepConfig::Analyse(a) => CanaryStep::Analyse(analysis(a, &probe)?),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            builder.strategy(Canary::new(steps)?)
        }
    };
    builder = hooks(builder, &config.hooks);
    Ok(Built {
        deployer: builder.build()?,
        environment,
    })
}

fn router(config: &RouterConfig) -> Result<Arc<dyn Router>> {
    Ok(match config {
        RouterConfig::Nginx(nginx) => Arc::new(NginxRouter::from_config(nginx.clone())?),
        RouterConfig::Traefik(traefik) => Arc::new(TraefikRouter::new(traefik.0.clone())?),
    })
}

/// Every configured probe, all of which must pass.
fn probe(config: &ProbeConfig, environment: &DockerEnvironment) -> Result<Arc<dyn HealthProbe>> {
    let mut probes: Vec<Arc<dyn HealthProbe>> = Vec::new();
    if config.docker_health {
        probes.push(Arc::new(environment.health_probe()));
    }
    if let Some(tcp) = &config.tcp {
        let mut probe = TcpProbe::new();
        if let Some(timeout) = tcp.timeout {
            probe = probe.timeout(timeout);
        }
        probes.push(Arc::new(probe));
    }
    if let Some(http) = &config.http {
        let mut probe = HttpProbe::new(&http.path)?;
        if let Some([low, high]) = http.status {
            probe = probe.expect_status(low..=high);
        }
        if let Some(text) = &http.body_contains {
            probe = probe.body_contains(text.clone());
        }
        if let Some(timeout) = http.timeout {
            probe = probe.timeout(timeout);
        }
        probes.push(Arc::new(probe));
    }
    if let Some(command) = &config.command {
        probes.push(Arc::new(command.clone()));
    }
    if probes.len() == 1 {
        return Ok(probes.remove(0));
    }
    Ok(Arc::new(AllOf::new(probes)?))
}

/// The analysis `config` describes: its Prometheus check if it has one, else the health probes.
fn analysis(config: &AnalysisConfig, probe: &Arc<dyn HealthProbe>) -> Result<Analysis> {
    let probe = match &config.prometheus {
        Some(prometheus) => Arc::new(prometheus.build(config.check_timeout())?),
        None => probe.clone(),
    };
    let mut analysis = Analysis::new(probe);
    if let Some(count) = config.count {
        analysis = analysis.count(count);
    }
    if let Some(interval) = config.interval {
        analysis = analysis.interval(interval);
    }
    if let Some(timeout) = config.timeout {
        analysis = analysis.timeout(timeout);
    }
    if let Some(limit) = config.failure_limit {
        analysis = analysis.failure_limit(limit);
    }
    if let Some(limit) = config.inconclusive_limit {
        analysis = analysis.inconclusive_limit(limit);
    }
    Ok(analysis)
}

fn hooks(mut builder: bluegreen::DeployerBuilder, config: &HooksConfig) -> bluegreen::DeployerBuilder {
    let stages = [
        (Stage::BeforeChange, &config.before_change),
        (Stage::BeforeTraffic, &config.before_traffic),
        (Stage::AfterPromotion, &config.after_promotion),
        (Stage::AfterCompletion, &config.after_completion),
        (Stage::AfterRollback, &config.after_rollback),
    ];
    for (stage, hooks) in stages {
        for hook in hooks {
            builder = builder.hook(stage, hook.clone());
        }
    }
    builder
}

/// Who acts: `--who`, else `$USER`, else `uid <n>`-less "unknown".
pub fn who(given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Unused-field guard: every key of the config reaches the builder.
#[allow(dead_code)]
fn _uses_every_key(config: &Config) {
    let Config {
        app: _,
        state_dir: _,
        approval_timeout: _,
        adopt_existing_config: _,
        docker: _,
        router: _,
        probe: _,
        health: _,
        strategy: _,
        retirement: _,
        timeouts: _,
        hooks: _,
        webhook: _,
    } = config;
}
