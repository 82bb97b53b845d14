//! [`NginxRouter`]: the [`Router`] over one nginx upstream file.

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bluegreen_core::backend::async_trait;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tracing::instrument;

use bluegreen_core::backend::file::{self, Snapshot};
use bluegreen_core::backend::wait::poll;
use bluegreen_core::backend::DrainStatus;
use bluegreen_core::{Adoption, Error, Observation, Restore, Result, Router, RouterCapabilities, Routes, Serving};

use crate::blocking;
use crate::builder::NginxRouterBuilder;
use crate::config::NginxConfig;
use crate::drain;
use crate::reload::{self, Failure, ReloadCommand};
use crate::render::{self, Layout};

/// Moves traffic by rewriting one nginx upstream file, validating it with `nginx -t`, reloading
/// nginx, and confirming that the new nginx generation answers.
///
/// # How `apply` works
/// 1. The routes are rendered (values nginx would misread are refused; nothing is written).
/// 2. If the file already holds these routes and nginx serves its generation, nothing is done
///    (no reload: a reload closes idle keep-alive connections). A file the router cannot read
///    back (edited by hand) is replaced.
/// 3. The file is replaced atomically (temp file in its directory, fsync, rename).
/// 4. `nginx -t` checks your whole config; on failure the previous file is put back and the
///    error carries nginx's own message.
/// 5. nginx is reloaded (see [`ReloadCommand`]; by default, with the pid file set, the master is
///    sent SIGHUP directly); on failure the previous file is put back.
/// 6. When the master's pid file is known (Linux), the router waits until none of the workers
///    that ran before the reload still accepts connections (nginx lets them accept for ~100 ms
///    after the new ones start), checking their `/proc` entries every millisecond; then it polls
///    the rendered status location, on a new connection each time, until it answers this
///    change's generation token. Only then does `apply` return `Ok`: every new connection reaches
///    the new routes. If that does not happen within the confirm timeout, the previous file is
///    put back, nginx is reloaded again, and the error is [`Error::Timeout`].
///
/// Nothing blocks the async runtime: nginx's commands run under `tokio::process` (their exit
/// awaited, their output drained, killed at their timeout), and file and `/proc` I/O runs on
/// tokio's blocking pool. Steps 3–5 run to completion in a task of their own, serialised with
/// other applies. If the `apply` future is dropped before the reload is sent, the previous file
/// is put back and nothing of it lands; once the reload is sent, the change lands in full and
/// [`current`](Router::current) reads it. Only a runtime shutting down in the middle of a switch
/// stops that task where it is (a command in flight is killed): the file may then hold routes
/// nginx does not serve, which [`observe`](Router::observe) reports as [`Serving::Stale`].
#[derive(Debug)]
pub struct NginxRouter {
    inner: Arc<Inner>,
    lock: Arc<Mutex<()>>,
    client: reqwest::Client,
}

#[derive(Debug)]
struct Inner {
    config: NginxConfig,
    layout: Layout,
    confirm_url: String,
    /// Whether `/proc` can be read here (checked once, at construction).
    proc_readable: bool,
}

/// How often the workers of the previous generation are checked after a reload: a
/// check reads only their own `/proc` entries, so a fine interval costs little and `apply`
/// returns within about a millisecond of nginx retiring them.
const OLD_GENERATION_CHECK: Duration = Duration::from_millis(1);

/// What a switch left behind: how to undo it, and the workers of the generation before it.
struct Switched {
    snapshot: Snapshot,
    master: Option<i32>,
    old_workers: Vec<i32>,
}

impl Switched {
    /// Whether no worker of the previous generation still accepts connections (always true when
    /// the master is unknown or `/proc` cannot be read).
    async fn old_generation_gone(&self) -> Result<bool> {
        let Some(master) = self.master else { return Ok(true) };
        if self.old_workers.is_empty() {
            return Ok(true);
        }
        let workers = self.old_workers.clone();
        let left = blocking::run(move || drain::still_accepting(master, &workers))
            .await
            .map_err(|e| Error::backend("nginx", e, false))?;
        Ok(left.is_empty())
    }
}

/// The nginx generation serving before a reload, as `/proc` shows it.
struct Generation {
    master: i32,
    /// Whether `master`'s title is an nginx master's (then it can be sent the reload signal).
    nginx_master: bool,
    /// Its workers accepting connections.
    workers: Vec<i32>,
}

/// Set when the `apply` future is dropped; read before the point of no return (the reload).
struct Abandoned(Arc<AtomicBool>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl NginxRouter {
    /// A builder for the router owning `upstream_file`, which defines upstream `upstream_name`.
    pub fn builder(
        upstream_file: impl Into<std::path::PathBuf>,
        upstream_name: impl Into<String>,
    ) -> NginxRouterBuilder {
        NginxRouterBuilder::new(NginxConfig::new(upstream_file, upstream_name))
    }

    /// The router for `config`, after checking every value. Starts nothing, and writes nothing
    /// but this: temporary files of the upstream file that a killed writer left in its
    /// directory (`.<file>.bluegreen.<random>.tmp`, unlocked and unchanged for 10 s) are
    /// removed; no other file is touched, and a failure to remove is only logged.
    ///
    /// Inside a tokio runtime the cleanup runs on its blocking pool, in the background (a
    /// leftover is at least 10 s old, so it never races this router's own writes); outside one it
    /// runs before this returns.
    pub fn from_config(config: NginxConfig) -> Result<Self> {
        config.validate()?;
        let upstream_file = config.upstream_file.clone();
        let clean = move || file::clean_leftovers(&upstream_file, &[]);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(clean)),
            Err(_) => clean(),
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::backend_caused_by("nginx", "cannot build the HTTP client", false, e))?;
        let inner = Inner {
            layout: config.layout(),
            confirm_url: config.confirm_url(),
            // A `stat` of procfs: answered from memory, never waiting on a disk.
            proc_readable: drain::observable(),
            config,
        };
        Ok(NginxRouter {
            inner: Arc::new(inner),
            lock: Arc::new(Mutex::new(())),
            client,
        })
    }

    /// The config this router runs with.
    pub fn config(&self) -> &NginxConfig {
        &self.inner.config
    }

    /// The generation token the live nginx answers, `None` when nothing answers.
    pub async fn live_generation(&self) -> Option<String> {
        let response = self
            .client
            .get(&self.inner.confirm_url)
            .header(reqwest::header::CONNECTION, "close")
            .header(
                reqwest::header::HOST,
                render::status_server_name(&self.inner.config.upstream_name),
            )
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        Some(response.text().await.ok()?.trim().to_owned())
    }

    async fn read(&self) -> Result<Option<render::Parsed>> {
        let path = self.inner.config.upstream_file.clone();
        let Some(bytes) = blocking::run_core(move || file::read_optional(&path)).await? else {
            return Ok(None);
        };
        let path = &self.inner.config.upstream_file;
        let what = path.display().to_string();
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::backend("nginx", format!("{what} is not UTF-8 text"), false))?;
        render::parse(&text, &what).map(Some)
    }

    /// Runs steps 3–5 in a task of their own that owns the lock until it finishes (dropping
    /// `apply` does not stop it half-way).
    async fn switch(&self, text: String, guard: OwnedMutexGuard<()>) -> (Result<Switched>, OwnedMutexGuard<()>) {
        let flag = Arc::new(AtomicBool::new(false));
        let _abandoned = Abandoned(Arc::clone(&flag));
        let inner = Arc::clone(&self.inner);
        let task = tokio::spawn(async move { (inner.switch(text, &flag).await, guard) });
        match task.await {
            Ok(done) => done,
            // The task panicked (a bug): its guard is gone with it, so take the lock again to
            // give the caller one, and report what nginx state is unknown.
            Err(e) => {
                let guard = Arc::clone(&self.lock).lock_owned().await;
                let message = format!("the switch task failed ({e}); run status to see what nginx serves");
                (Err(Error::backend("nginx", message, false)), guard)
            }
        }
    }

    /// What nginx is seen serving against what the file holds (the caller holds the lock).
    async fn observe_locked(&self) -> Result<Observation> {
        let parsed = match self.read().await {
            Ok(parsed) => parsed,
            Err(e) => return Ok(Observation::new(None, Serving::Foreign(e.chain().to_string()))),
        };
        let Some(parsed) = parsed else {
            // No file: a fresh install, unless nginx still serves a generation of a file that was
            // deleted without a reload.
            let serving = match self.live_generation().await {
                None => Serving::Confirmed,
                Some(live) => Serving::Stale(format!(
                    "{} is gone but nginx still answers generation {live}",
                    self.inner.config.upstream_file.display()
                )),
            };
            return Ok(Observation::new(None, serving));
        };
        let file = self.inner.config.upstream_file.display();
        let serving = if !parsed.intact {
            Serving::Foreign(format!(
                "{file} was edited since bluegreen-nginx wrote it (its checksum differs)"
            ))
        } else {
            match self.live_generation().await {
                Some(live) if live == parsed.token => Serving::Confirmed,
                Some(live) => Serving::Stale(format!(
                    "nginx answers generation {live} but {file} holds {} (a reload that did not happen?)",
                    parsed.token
                )),
                None => Serving::Unreachable(format!(
                    "nothing answers the generation token at {}",
                    self.inner.confirm_url
                )),
            }
        };
        Ok(Observation::new(Some(parsed.routes), serving))
    }

    /// Puts `snapshot` back and reloads, in a task that owns the lock until it finishes (a
    /// dropped `apply` cannot let another one in half-way); says what happened.
    async fn undo(&self, snapshot: Snapshot, guard: OwnedMutexGuard<()>) -> Restore {
        let inner = Arc::clone(&self.inner);
        let undo = tokio::spawn(async move {
            let undone = match blocking::run_core(move || snapshot.restore(None)).await {
                Ok(()) => inner.reload(None).await.map_err(|f| f.describe()),
                Err(e) => Err(e.to_string()),
            };
            drop(guard);
            undone
        });
        match undo.await {
            Ok(Ok(())) => Restore::Restored,
            Ok(Err(e)) => Restore::Failed(e),
            Err(e) => Restore::Failed(e.to_string()),
        }
    }

    /// Step 6: waits until no worker of the previous generation still accepts connections (when
    /// they are known), then polls the generation token until nginx answers it, all within the
    /// confirm timeout.
    ///
    /// In this order because nginx hands new connections to its idle old workers first for as
    /// long as they accept (~100 ms after a reload): the token seldom answers before they stop,
    /// and right after they do, the first request reaches a new worker. So `apply` returns within
    /// about a millisecond of the old generation's retirement instead of up to a poll interval
    /// after it.
    async fn confirm(&self, token: &str, switched: &Switched) -> Result<()> {
        let config = &self.inner.config;
        let started = Instant::now();
        poll(
            "nginx to retire its previous workers",
            config.confirm_timeout(),
            OLD_GENERATION_CHECK.min(config.confirm_interval()),
            || async { Ok(switched.old_generation_gone().await?.then_some(())) },
        )
        .await?;
        let retired = started.elapsed();
        poll(
            "nginx to serve the new routes",
            config.confirm_timeout().saturating_sub(retired),
            config.confirm_interval(),
            || async { Ok((self.live_generation().await.as_deref() == Some(token)).then_some(())) },
        )
        .await?;
        tracing::debug!(?retired, confirmed = ?started.elapsed(), "nginx confirmed");
        Ok(())
    }
}

impl Inner {
    fn nginx_args(&self, tail: &[&str]) -> Vec<OsString> {
        let mut args = Vec::new();
        if let Some(prefix) = &self.config.nginx_prefix {
            args.extend([OsString::from("-p"), prefix.into()]);
        }
        if let Some(conf) = &self.config.nginx_conf {
            args.extend([OsString::from("-c"), conf.into()]);
        }
        args.extend(tail.iter().map(OsString::from));
        args
    }

    async fn test(&self) -> std::result::Result<(), Failure> {
        let timeout = self.config.command_timeout();
        match &self.config.test_command {
            Some(cmd) => reload::run(&cmd.program, &os_args(&cmd.args), timeout).await,
            None => reload::run(&self.config.nginx_binary, &self.nginx_args(&["-t", "-q"]), timeout).await,
        }
    }

    /// Tells nginx to reload; `master` is the nginx master seen in `/proc`, if any (see
    /// [`ReloadCommand::Nginx`]).
    async fn reload(&self, master: Option<i32>) -> std::result::Result<(), Failure> {
        let timeout = self.config.command_timeout();
        match &self.config.reload {
            ReloadCommand::Nginx => match master {
                Some(pid) => reload::hang_up(pid),
                None => reload::run(&self.config.nginx_binary, &self.nginx_args(&["-s", "reload"]), timeout).await,
            },
            ReloadCommand::Signal => {
                // `validate` refuses the signal reload without a pid file; say so if it ever is.
                let Some(pid_file) = self.config.pid_file.as_deref() else {
                    return Err(Failure::new("SIGHUP to the nginx master", "no pid_file is configured"));
                };
                reload::signal_master(pid_file).await
            }
            ReloadCommand::Command(cmd) => reload::run(&cmd.program, &os_args(&cmd.args), timeout).await,
        }
    }

    /// Write, test, reload; the previous file is back in place on any failure.
    async fn switch(&self, text: String, abandoned: &AtomicBool) -> Result<Switched> {
        let started = Instant::now();
        let path = self.config.upstream_file.clone();
        let snapshot = blocking::run_core(move || {
            let snapshot = Snapshot::take(&path)?;
            file::write_atomic(&path, text.as_bytes(), None)?;
            Ok(snapshot)
        })
        .await?;
        let written = started.elapsed();
        // The workers accepting now are the generation this reload retires: they are listed (a
        // `/proc` scan) while `nginx -t` runs, so the scan costs no time of its own.
        let (tested, old_generation) = tokio::join!(self.test(), self.generation());
        if let Err(f) = tested {
            let error = f.into_error("nginx refused the new routes", false);
            return Err(Error::not_applied(error, restore(&snapshot).await));
        }
        let tested = started.elapsed();
        if abandoned.load(Ordering::SeqCst) {
            let error = Error::backend("nginx", "apply was cancelled before the reload", true);
            return Err(Error::not_applied(error, restore(&snapshot).await));
        }
        let master = old_generation.as_ref().and_then(|g| g.nginx_master.then_some(g.master));
        if let Err(f) = self.reload(master).await {
            let error = f.into_error("reload failed (is nginx running?)", true);
            return Err(Error::not_applied(error, restore(&snapshot).await));
        }
        tracing::debug!(?written, ?tested, reloaded = ?started.elapsed(), "nginx switched");
        Ok(Switched {
            snapshot,
            master: old_generation.as_ref().map(|g| g.master),
            old_workers: old_generation.map(|g| g.workers).unwrap_or_default(),
        })
    }

    /// The master and its workers accepting connections, when the master is known (see
    /// [`master`](Self::master)) and `/proc` answers.
    async fn generation(&self) -> Option<Generation> {
        let master = self.master().await?;
        let (nginx_master, workers) =
            blocking::run(move || (drain::is_master(master), drain::accepting_workers(master)))
                .await
                .ok()?;
        Some(Generation {
            master,
            nginx_master,
            workers: workers.ok()?,
        })
    }

    /// The last error lines of nginx's error log, for a reload that did not take.
    async fn error_log_tail(&self) -> String {
        let Some(path) = self.config.error_log.clone() else {
            return "nginx's error log says why".into();
        };
        blocking::run(move || reload::error_log_tail(&path))
            .await
            .unwrap_or_else(|e| e)
    }

    /// The master's pid, when its pid file is configured and `/proc` is readable.
    async fn master(&self) -> Option<i32> {
        let pid_file = self.config.pid_file.as_deref()?;
        if !self.proc_readable {
            return None;
        }
        reload::read_pid(pid_file).await.ok()
    }
}

/// Puts the file a failed switch replaced back (nginx never loaded the new one, so that restores
/// everything).
async fn restore(snapshot: &Snapshot) -> Restore {
    let snapshot = snapshot.clone();
    match blocking::run_core(move || snapshot.restore(None)).await {
        Ok(()) => Restore::Restored,
        Err(e) => Restore::Failed(e.to_string()),
    }
}

fn os_args(args: &[String]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// What an unconfirmed apply waited for, worded for [`Error::Timeout`]'s
/// "`{operation}` did not finish within `{after}`": what was given up, and what was done then.
fn timed_out(token: &str, url: &str, log: &str) -> String {
    format!("confirming that nginx answers generation {token} at {url} ({log})")
}

/// A token unique to this change: time, process and a counter (letters, digits and `-` only).
fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("bg-{nanos:x}-{:x}-{n:x}", std::process::id())
}

#[async_trait]
impl Router for NginxRouter {
    fn name(&self) -> &str {
        "nginx"
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities::none()
            .with_weighted(true)
            .with_confirms(true)
            .with_observes_drain(self.inner.config.pid_file.is_some() && self.inner.proc_readable)
    }

    #[instrument(level = "debug", skip_all, fields(upstream = %self.inner.config.upstream_name))]
    async fn current(&self) -> Result<Option<Routes>> {
        // A dropped apply's switch task may still be writing, testing or undoing: wait for it,
        // so what is read is what will stay.
        let _settled = self.lock.lock().await;
        Ok(self.read().await?.map(|p| p.routes))
    }

    /// Reads the file and asks nginx which generation it serves: [`Serving::Confirmed`] only when
    /// the file is intact (its checksum matches) and nginx answers its generation token.
    #[instrument(level = "debug", skip_all, fields(upstream = %self.inner.config.upstream_name))]
    async fn observe(&self) -> Result<Observation> {
        let _settled = self.lock.lock().await;
        self.observe_locked().await
    }

    /// Keeps a file the router did not write (or that was edited) as the hidden file
    /// `.<file>.bluegreen-backup-<unix nanoseconds>` next to it (hidden, so an `include dir/*` never
    /// loads it; never overwriting an earlier backup); the next `apply` replaces the file. Nothing
    /// is reloaded. An intact file, or none, needs no backup.
    #[instrument(level = "debug", skip_all, fields(upstream = %self.inner.config.upstream_name))]
    async fn adopt(&self) -> Result<Adoption> {
        let _settled = self.lock.lock().await;
        let path = self.inner.config.upstream_file.clone();
        if matches!(
            self.read().await,
            Ok(None) | Ok(Some(render::Parsed { intact: true, .. }))
        ) {
            return Ok(Adoption::nothing_kept());
        }
        let kept = path.clone();
        let backup = blocking::run_core(move || {
            let Some(bytes) = file::read_optional(&kept)? else {
                return Ok(None);
            };
            file::back_up(&kept, &bytes, kept.parent()).map(Some)
        })
        .await?;
        let Some(backup) = backup else {
            return Ok(Adoption::nothing_kept());
        };
        tracing::info!(file = %path.display(), backup = %backup.display(), "nginx: adopted an upstream file");
        Ok(Adoption::backed_up(backup.display().to_string()))
    }

    #[instrument(level = "debug", skip_all, fields(upstream = %self.inner.config.upstream_name, slot = routes.split().major().map(|s| s.as_str()), split = %routes.split(), generation))]
    async fn apply(&self, routes: &Routes) -> Result<()> {
        let token = new_token();
        tracing::Span::current().record("generation", token.as_str());
        let text = render::render(&self.inner.layout, routes, &token)?;
        let guard = Arc::clone(&self.lock).lock_owned().await;
        // Skipped only when nginx is seen serving exactly these routes (a reload closes idle
        // keep-alive connections), never because the file says so.
        let observed = self.observe_locked().await?;
        if observed.serves(routes) {
            tracing::debug!("nginx already serves these routes");
            return Ok(());
        }
        if let Serving::Foreign(why) = &observed.serving {
            // The file is the router's: replace what is there (it is restored if the change fails).
            tracing::warn!(%why, "replacing an upstream file the router did not write");
        }
        let (switched, guard) = self.switch(text, guard).await;
        let switched = switched?;
        tracing::debug!(generation = %token, "nginx reloaded; confirming");
        if let Err(e) = self.confirm(&token, &switched).await {
            let restore = self.undo(switched.snapshot, guard).await;
            let error = match e {
                Error::Timeout { .. } => Error::Timeout {
                    operation: timed_out(&token, &self.inner.confirm_url, &self.inner.error_log_tail().await),
                    after: self.inner.config.confirm_timeout(),
                },
                other => other,
            };
            return Err(Error::not_applied(error, restore));
        }
        drop(guard);
        Ok(())
    }

    #[instrument(level = "debug", skip_all, fields(upstream = %self.inner.config.upstream_name, ?timeout))]
    async fn wait_drained(&self, timeout: Duration) -> Result<DrainStatus> {
        let Some(pid_file) = self.inner.config.pid_file.as_deref() else {
            return Ok(DrainStatus::NotObservable);
        };
        if !self.inner.proc_readable {
            return Ok(DrainStatus::NotObservable);
        }
        let master = reload::read_pid(pid_file)
            .await
            .map_err(|f| f.into_error("cannot find the nginx master", true))?;
        let drained = poll(
            "nginx old workers to exit",
            timeout,
            Duration::from_millis(20),
            || async {
                let left = blocking::run(move || drain::workers_shutting_down(master))
                    .await
                    .map_err(|e| Error::backend("nginx", e, false))?
                    .map_err(|e| Error::backend("nginx", format!("cannot read /proc: {e}"), false))?;
                Ok((left == 0).then_some(()))
            },
        )
        .await;
        match drained {
            Ok(()) => Ok(DrainStatus::Drained),
            Err(Error::Timeout { .. }) => Ok(DrainStatus::StillDraining),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unconfirmed_apply_reads_as_one_sentence() {
        let timeout = Error::Timeout {
            operation: timed_out(
                "bg-1",
                "http://127.0.0.1:8099/__bluegreen",
                "nginx's error log says why",
            ),
            after: Duration::from_secs(5),
        };
        let err = Error::not_applied(timeout, Restore::Restored);
        assert_eq!(
            err.chain().to_string(),
            "routes not applied (the previous configuration was restored): confirming that nginx \
             answers generation bg-1 at http://127.0.0.1:8099/__bluegreen (nginx's error log says \
             why) did not finish within 5s"
        );
    }

    #[test]
    fn building_removes_the_leftovers_of_this_routers_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let upstream = dir.path().join("shop.conf");
        let stale = dir.path().join(".shop.conf.bluegreen.Xy12Ab34Cd.tmp");
        let kept = [
            dir.path().join(".cart.conf.bluegreen.Xy12Ab34Cd.tmp"),
            dir.path().join(".shop.conf.Xy12Ab.tmp"),
            dir.path().join("other.conf"),
        ];
        for path in kept.iter().chain([&stale]) {
            std::fs::write(path, "x").unwrap();
            let file = std::fs::File::options().write(true).open(path).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(60)).unwrap();
        }
        let fresh = dir.path().join(".shop.conf.bluegreen.Fresh12345.tmp");
        std::fs::write(&fresh, "x").unwrap();
        NginxRouter::builder(&upstream, "shop").build().unwrap();
        assert!(!stale.exists(), "the stale temporary file is removed");
        for path in kept.iter().chain([&fresh]) {
            assert!(path.exists(), "{} was removed", path.display());
        }
    }
}
