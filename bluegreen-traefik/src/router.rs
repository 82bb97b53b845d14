//! [`TraefikRouter`]: the [`Router`] over one dynamic config file, confirmed through the API.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bluegreen_core::backend::async_trait;
use bluegreen_core::backend::file::{back_up, read_optional, write_atomic, Snapshot};
use bluegreen_core::backend::wait::poll;
use bluegreen_core::router::{Adoption, Observation, Router, RouterCapabilities, Routes, Serving};
use bluegreen_core::{AppName, Error, Restore, Result};

use crate::api::TraefikApi;
use crate::builder::TraefikRouterBuilder;
use crate::config::TraefikConfig;
use crate::files::FileGate;
use crate::render::{parse, render};
use crate::seen::{judge, look, Seen};
use crate::staging;

/// How long [`Router::current`]'s cross-check with the API may take before it is skipped.
const CROSS_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// Moves traffic through Traefik's file provider and confirms each switch through its API.
///
/// One file per application in the watched directory (`<app>.toml`), written whole: staged
/// outside the watched directory, fsynced, renamed in (one change for Traefik's watcher). When
/// the watched directory is a mount of its own (a bind mount, a volume) and no staging directory
/// is configured, the file is staged in its subdirectory `.bluegreen-staging/` instead (hidden
/// `.tmp` names, which Traefik does not load; a subdirectory, so its watcher sees only the rename).
/// [`apply`](Router::apply) returns once `/api/http/routers/<router>@file` and
/// `/api/http/services/<service>@file` show the new definition and weights, enabled, and the
/// servers of every slot with traffic are `UP`.
///
/// Beyond the [`Router`] contract:
/// - Before writing, the API must answer (and, in hybrid mode, every discovered service with
///   traffic must exist with a server up); otherwise nothing is written.
/// - If Traefik disables the new router or service (its error is quoted), or does not serve the
///   change within `providers_throttle + confirm_timeout`, the previous file is restored.
/// - File reads and writes run on tokio's blocking pool, one at a time. A dropped apply either
///   wrote nothing, or writes the whole file: a write under way finishes, and every later read
///   ([`current`](Router::current) included) or write through this router waits for it.
/// - With a health check configured, a changed file counts as live only once its servers stayed
///   `UP` for one check (Traefik reports new servers `UP` before checking them).
/// - Applies through one router are serialised; across processes the engine's lock is relied on.
#[derive(Debug)]
pub struct TraefikRouter {
    config: TraefikConfig,
    api: TraefikApi,
    /// Where temporary files are staged; see [`staging::resolve`].
    staging: PathBuf,
    apply_lock: tokio::sync::Mutex<()>,
    /// Every read and write of the file, on the blocking pool, one at a time.
    files: FileGate,
}

impl TraefikRouter {
    /// A router for `config`, after checking every value in it.
    ///
    /// Also decides where temporary files are staged: the staging directory if it is on the
    /// watched directory's mount (mount ids compared; on kernels before 5.8 a probe file
    /// `.<app>.<ext>.bluegreen-probe.<random>.tmp` is renamed in and removed), else, when no
    /// staging directory is configured, `<directory>/.bluegreen-staging/`. And removes
    /// temporary files of this router's file that a killed writer left behind (unlocked,
    /// unchanged for 10 s; no other file is touched).
    ///
    /// **Blocks** on those file-system checks (a few `stat`s, a directory listing, at most one
    /// probe rename): build routers at start-up, or inside `spawn_blocking` on a busy runtime.
    /// Every later call ([`Router`] methods) keeps its file I/O off the runtime.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the bad value; for `"traefik staging_directory"`, a configured
    /// staging directory from which a rename into the watched directory fails (another mount).
    pub fn new(config: TraefikConfig) -> Result<Self> {
        config.validate()?;
        let api = TraefikApi::new(&config.api_url, config.api_timeout)?;
        staging::remove_leftovers(&config);
        let staging = staging::resolve(&config)?;
        Ok(TraefikRouter {
            config,
            api,
            staging,
            apply_lock: tokio::sync::Mutex::new(()),
            files: FileGate::default(),
        })
    }

    /// A builder for application `app`, whose file goes in the watched `directory`, routed by
    /// `rule` (e.g. ``Host(`shop.example.com`)``).
    pub fn builder(
        app: AppName,
        directory: impl Into<std::path::PathBuf>,
        rule: impl Into<String>,
    ) -> TraefikRouterBuilder {
        TraefikRouterBuilder::new(TraefikConfig::new(app, directory, rule))
    }

    /// The configuration.
    pub fn config(&self) -> &TraefikConfig {
        &self.config
    }

    /// Where temporary files are staged: the configured or default staging directory, or
    /// `<directory>/.bluegreen-staging` when the watched directory is a mount of its own.
    pub fn staging_directory(&self) -> &Path {
        &self.staging
    }

    fn router_api_name(&self) -> String {
        format!("{}@file", self.config.router_name())
    }

    /// The file's bytes, `None` when there is none.
    async fn read_file(&self) -> Result<Option<Vec<u8>>> {
        let path = self.config.file_path();
        self.files.run(move || read_optional(&path)).await
    }

    /// Compares what the API shows with `routes` (one look: every request at once).
    async fn seen(&self, routes: &Routes) -> Result<Seen> {
        judge(&self.config, routes, look(&self.api, &self.config, routes).await)
    }

    /// In hybrid mode, the discovered services that will get traffic must exist with a server
    /// up: a reference to a missing service disables the whole router in Traefik.
    ///
    /// A service may be on its way: Traefik's Docker provider leaves a container with a health
    /// check out until Docker reports it healthy, and picks up that report moments later (after
    /// its `providersThrottleDuration`), so a slot the engine just found healthy can be missing
    /// from the API for a while. This waits up to the confirmation deadline for every such
    /// service; only then is the apply refused (nothing written).
    async fn check_discovered(&self, routes: &Routes) -> Result<()> {
        if self.config.discovered_provider.is_none() {
            return Ok(());
        }
        let missing = Mutex::new(String::from("no answer from Traefik's API"));
        let (deadline, started) = (self.config.confirm_deadline(), Instant::now());
        let waited = poll("discover", deadline, self.config.poll_interval, || {
            let missing = &missing;
            async move {
                for (slot, _, _) in routes.weighted() {
                    let name = self.config.slot_api_name(slot);
                    // A service no router uses yet has no server status: existing and enabled is
                    // all Traefik can tell before it is referenced; confirmation then waits for a
                    // server up.
                    let usable = match self.api.service(&name).await? {
                        Some(service) => {
                            service.enabled()
                                && (service.server_status.is_empty()
                                    || service.server_status.values().any(|s| s == "UP"))
                        }
                        None => false,
                    };
                    if !usable {
                        *missing.lock().unwrap_or_else(|e| e.into_inner()) = format!(
                            "{name} ({slot} would get traffic; is the container running and healthy, with \
                             its labels?)"
                        );
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            }
        })
        .await;
        match waited {
            Err(Error::Timeout { .. }) => Err(Error::NotFound {
                what: "usable Traefik service",
                name: format!(
                    "{} within {}; nothing was written",
                    missing.into_inner().unwrap_or_else(|e| e.into_inner()),
                    humantime::format_duration(deadline)
                ),
            }),
            other => {
                tracing::debug!(waited = ?started.elapsed(), "traefik: discovered services checked");
                other
            }
        }
    }

    /// Polls the API until `routes` are live, rejected, or the deadline passes.
    ///
    /// Traefik reports a server `UP` until its first health check says otherwise, so after a
    /// change with a health check configured, the servers must stay `UP` for one check (interval
    /// plus timeout) after the change is seen, before it counts as live.
    async fn confirm(&self, routes: &Routes, changed: bool) -> Result<()> {
        let last = Mutex::new(String::from("nothing seen yet"));
        let first_live: Mutex<Option<Instant>> = Mutex::new(None);
        let settle = match (&self.config.health_check, changed) {
            (Some(hc), true) => hc.interval + hc.timeout,
            _ => Duration::ZERO,
        };
        let deadline = self.config.confirm_deadline().saturating_add(settle);
        let outcome = poll("confirm", deadline, self.config.poll_interval, || {
            let (last, first_live) = (&last, &first_live);
            async move {
                let pending = |why: String| {
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = why;
                    Ok(None)
                };
                let seen = match self.seen(routes).await {
                    Ok(seen) => seen,
                    // One slow or reset API request while Traefik reloads is not a verdict.
                    Err(e) if e.is_temporary() => {
                        *first_live.lock().unwrap_or_else(|e| e.into_inner()) = None;
                        return pending(format!("API: {}", e.chain()));
                    }
                    Err(e) => return Err(e),
                };
                match seen {
                    Seen::Live => {
                        let since = *first_live
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert_with(Instant::now);
                        if since.elapsed() >= settle {
                            Ok(Some(Ok(())))
                        } else {
                            pending("waiting for Traefik's first health check of the new servers".into())
                        }
                    }
                    Seen::Rejected(errors) => Ok(Some(Err(errors))),
                    Seen::Pending(why) => {
                        *first_live.lock().unwrap_or_else(|e| e.into_inner()) = None;
                        pending(why)
                    }
                }
            }
        })
        .await;
        let file = self.config.file_path();
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(errors)) => Err(Error::backend(
                "traefik",
                format!("Traefik refused {}: {errors}", file.display()),
                false,
            )),
            Err(Error::Timeout { after, .. }) => Err(Error::Timeout {
                operation: format!(
                    "Traefik serving {} ({}; last seen: {}; Traefik may have rejected the file, see its log)",
                    file.display(),
                    routes.split(),
                    last.into_inner().unwrap_or_else(|e| e.into_inner()),
                ),
                after,
            }),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Router for TraefikRouter {
    fn name(&self) -> &str {
        "traefik"
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities::none().with_weighted(true).with_confirms(true)
    }

    /// Reads the split back from the file (`None` when there is none). When the API answers
    /// within 500 ms it is cross-checked, and a difference is logged (a change still in flight,
    /// or a file Traefik refused) — the file stays the answer, because it is what Traefik loads.
    #[tracing::instrument(level = "debug", skip_all, fields(app = %self.config.app))]
    async fn current(&self) -> Result<Option<Routes>> {
        let Some(bytes) = self.read_file().await? else {
            return Ok(None);
        };
        let routes = parse(&self.config, &bytes)?;
        match tokio::time::timeout(CROSS_CHECK_TIMEOUT, self.seen(&routes)).await {
            Ok(Ok(Seen::Live)) => {}
            Ok(Ok(Seen::Pending(why))) => {
                tracing::warn!(file = %self.config.file_path().display(), %why, "Traefik does not serve the file (yet)")
            }
            Ok(Ok(Seen::Rejected(errors))) => {
                tracing::warn!(file = %self.config.file_path().display(), %errors, "Traefik refused the file")
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "cross-check with Traefik's API skipped"),
            Err(_) => tracing::debug!("cross-check with Traefik's API timed out"),
        }
        Ok(Some(routes))
    }

    /// Reads the file and asks Traefik's API whether it serves it: [`Serving::Confirmed`] only
    /// when the file is exactly what this router renders for its routes and the API shows the
    /// router, the weights and the servers live.
    #[tracing::instrument(level = "debug", skip_all, fields(app = %self.config.app))]
    async fn observe(&self) -> Result<Observation> {
        let _serialised = self.apply_lock.lock().await;
        let path = self.config.file_path();
        let Some(bytes) = self.read_file().await? else {
            return Ok(Observation::new(None, Serving::Confirmed));
        };
        let routes = match parse(&self.config, &bytes) {
            Ok(routes) => routes,
            Err(e) => return Ok(Observation::new(None, Serving::Foreign(e.chain().to_string()))),
        };
        // A file this router can read is judged by what Traefik serves of it: a hand edit that
        // still parses is what Traefik loads, and `status` shows where it sends traffic.
        let serving = match self.seen(&routes).await {
            Ok(Seen::Live) => Serving::Confirmed,
            Ok(Seen::Pending(why)) => Serving::Stale(why),
            Ok(Seen::Rejected(errors)) => Serving::Stale(format!("Traefik refused {}: {errors}", path.display())),
            Err(e) => Serving::Unreachable(e.chain().to_string()),
        };
        Ok(Observation::new(Some(routes), serving))
    }

    /// Keeps a file the router cannot read back as a hidden backup in the staging directory
    /// (outside the watched directory, so Traefik never loads it; never overwriting an earlier
    /// backup); the next `apply` replaces it.
    #[tracing::instrument(level = "debug", skip_all, fields(app = %self.config.app))]
    async fn adopt(&self) -> Result<Adoption> {
        let _serialised = self.apply_lock.lock().await;
        let path = self.config.file_path();
        let Some(bytes) = self.read_file().await? else {
            return Ok(Adoption::nothing_kept());
        };
        if parse(&self.config, &bytes).is_ok() {
            return Ok(Adoption::nothing_kept());
        }
        let backup = {
            let (path, staging) = (path.clone(), self.staging.clone());
            self.files.run(move || back_up(&path, &bytes, Some(&staging))).await?
        };
        tracing::info!(file = %path.display(), backup = %backup.display(), "traefik: adopted a dynamic file");
        Ok(Adoption::backed_up(backup.display().to_string()))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            app = %self.config.app,
            slot = routes.split().major().map(|s| s.as_str()),
            split = %routes.split(),
            changed = tracing::field::Empty,
        )
    )]
    async fn apply(&self, routes: &Routes) -> Result<()> {
        let _serialised = self.apply_lock.lock().await;
        let started = Instant::now();
        let bytes = render(&self.config, routes)?;
        let path = self.config.file_path();
        self.api.router(&self.router_api_name()).await.map_err(|e| match e {
            Error::Backend {
                message,
                temporary,
                source,
                ..
            } => Error::Backend {
                backend: "traefik".into(),
                message: format!("{message}; nothing was written to {}", path.display()),
                temporary,
                source,
            },
            other => other,
        })?;
        self.check_discovered(routes).await?;
        let checked = started.elapsed();
        let (snapshot, changed) = {
            let (path, staging) = (path.clone(), self.staging.clone());
            self.files
                .run(move || {
                    let snapshot = Snapshot::take(&path)?;
                    let changed = snapshot.previous() != Some(bytes.as_slice());
                    if changed {
                        write_atomic(&path, &bytes, Some(&staging))?;
                    }
                    Ok((snapshot, changed))
                })
                .await?
        };
        tracing::Span::current().record("changed", changed);
        let written = started.elapsed();
        if changed {
            tracing::debug!(
                file = %path.display(),
                api_check_ms = millis(checked),
                write_ms = millis(written.saturating_sub(checked)),
                "traefik file written"
            );
        }
        match self.confirm(routes, changed).await {
            Ok(()) => {
                tracing::debug!(
                    confirm_ms = millis(started.elapsed().saturating_sub(written)),
                    "traefik serves the change"
                );
                Ok(())
            }
            Err(e) if !changed => Err(e),
            Err(e) => {
                let staging = self.staging.clone();
                let restore = self.files.run(move || snapshot.restore(Some(&staging))).await;
                Err(restored(e, restore))
            }
        }
    }
}

/// `d` in milliseconds, for the timings logged at debug level.
fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `e`, saying that the previous file was put back (or that putting it back failed too).
fn restored(e: Error, restore: Result<()>) -> Error {
    let restore = match restore {
        Ok(()) => Restore::Restored,
        Err(r) => Restore::Failed(r.chain().to_string()),
    };
    Error::not_applied(e, restore)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_timeout_reads_as_one_sentence() {
        let timeout = Error::Timeout {
            operation: "Traefik serving /d/shop.toml (100/0; last seen: weights)".into(),
            after: Duration::from_secs(7),
        };
        let err = restored(timeout, Ok(()));
        assert_eq!(
            err.to_string(),
            "routes not applied (the previous configuration was restored)"
        );
        assert_eq!(
            err.chain().to_string(),
            "routes not applied (the previous configuration was restored): Traefik serving /d/shop.toml \
             (100/0; last seen: weights) did not finish within 7s"
        );
        assert!(
            matches!(&err, Error::NotApplied { restore: Restore::Restored, source }
                if matches!(**source, Error::Timeout { .. })),
            "{err:?}"
        );
        let refused = Error::backend("traefik", "Traefik refused /d/shop.toml: bad", false);
        let gone = Error::backend("traefik", "disk full", false);
        let err = restored(refused, Err(gone));
        assert_eq!(
            err.chain().to_string(),
            "routes not applied (restoring the previous configuration failed too: traefik: disk full): \
             traefik: Traefik refused /d/shop.toml: bad"
        );
        assert!(
            matches!(
                &err,
                Error::NotApplied {
                    restore: Restore::Failed(_),
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
