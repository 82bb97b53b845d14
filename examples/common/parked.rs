//! A canary parked at its approval gate, then promoted from a second process: the flow an
//! end-to-end example runs after its deploys, and the second process's side of it.
//!
//! The example re-executes itself (`std::env::current_exe()`) as `<example> promote <app>`, with
//! the state directory, the images' repository and the proxy's settings in variables; that process
//! builds its own deployer over the same state directory, Docker Engine and proxy, sends `promote`,
//! and carries the deployment on to the end (the deployment is parked: no process runs it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use bluegreen_core::command::Judgement;
use bluegreen_core::journal::{FileJournal, Journal, Record};
use bluegreen_core::lock::{DeployLock, FileLock, LockHolder};
use bluegreen_core::{
    Answer, Canary, CanaryStep, Command, Deployer, Environment, Error, Phase, Release, Result, Slot, SlotStatus,
};
use bluegreen_docker::DockerEnvironment;
use bluegreen_testkit::load::{ClientMode, Load, LoadConfig, Tally};
use bluegreen_testkit::scenario::versions_seen;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The first argument that makes the example the second process: `<example> promote <app>`.
pub const PROMOTE_ARG: &str = "promote";
/// The state directory both processes use.
pub const STATE_DIR_VAR: &str = "BLUEGREEN_EXAMPLE_STATE_DIR";
/// The demo images' repository (release vN is `<repository>:vN`).
pub const IMAGES_VAR: &str = "BLUEGREEN_EXAMPLE_IMAGES";
/// The pid of the process that owns the containers (their owner label).
pub const OWNER_VAR: &str = "BLUEGREEN_EXAMPLE_OWNER";

/// How many requests each count sends.
const COUNT: usize = 200;
/// How long the second process may take.
const PROMOTER_TIMEOUT: Duration = Duration::from_secs(90);

/// 20 %, wait for approval, 60 %, then all.
pub fn canary() -> Canary {
    Canary::new(vec![
        CanaryStep::SetWeight(20),
        CanaryStep::PauseUntilApproved,
        CanaryStep::SetWeight(60),
    ])
    .expect("valid steps")
}

/// A value the second process needs, from its variables.
pub fn var(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| Error::invalid("environment variable", name, "not set"))
}

/// Fails the example with `what` unless `ok`; prints it when it holds.
fn check(ok: bool, what: String) -> Result<()> {
    if ok {
        println!("   ok: {what}");
        Ok(())
    } else {
        Err(Error::invalid("scenario", "parked canary", format!("expected {what}")))
    }
}

/// What serves a version: its slot and container, from the environment.
async fn servers(environment: &DockerEnvironment) -> Result<BTreeMap<String, String>> {
    let mut servers = BTreeMap::new();
    for slot in [Slot::Blue, Slot::Green] {
        if let SlotStatus::Running { release, endpoints } = environment.status(slot).await? {
            let container = environment.config().container_name(slot);
            servers.insert(
                release.to_string(),
                format!("slot {slot}, container {container} at {endpoints}"),
            );
        }
    }
    Ok(servers)
}

/// Sends [`COUNT`] requests through `proxy` and prints how many each version answered, and from
/// which container.
async fn count(proxy: SocketAddr, host: &str, environment: &DockerEnvironment) -> Result<BTreeMap<String, usize>> {
    let seen = versions_seen(proxy, host, COUNT).await;
    let servers = servers(environment).await?;
    for (version, n) in &seen {
        let server = servers.get(version).map_or("not running", String::as_str);
        println!("   {n:>4} of {COUNT} answered by {version:<6} ({server})");
    }
    Ok(seen)
}

/// The flow: `deployer` (a canary with [`canary`]'s steps, parked at gates, over `state_dir`)
/// deploys `release`, which parks at 20 %; the proxy serves that split; a second process started
/// with `promoter_env` promotes and carries it on; the proxy then serves only `release`, and the
/// old slot is stopped. Clients count every request meanwhile; returns their failures.
pub async fn promoted_from_another_process(
    deployer: &Deployer,
    environment: &DockerEnvironment,
    proxy: SocketAddr,
    host: &str,
    state_dir: &Path,
    release: &str,
    promoter_env: &[(&str, String)],
) -> Result<u64> {
    let app = deployer.app().clone();
    let before = deployer.status().await?;
    let (Some(old_slot), Some(old)) = (before.live_slot(), before.live_release().cloned()) else {
        return Err(Error::invalid(
            "scenario",
            "parked canary",
            "nothing live to canary against",
        ));
    };
    println!("\n== canary {release} (20 %, then paused for approval), parked");
    let mut events = deployer.subscribe();
    let report = deployer.deploy(Release::new(release)?).await?;
    super::timeline::print(&mut events);
    let parking = report.deployment.parked();
    println!(
        "   => deploy returned: {} (parked: {})",
        report.deployment.phase(),
        parking.map_or("no".to_string(), |p| format!("since {}", p.since))
    );
    check(
        parking.is_some() && report.deployment.phase().name() == "paused",
        "deploy to return, parked at the gate".into(),
    )?;
    // Nobody holds the lock while it is parked: take it and let it go.
    let lock = FileLock::new(state_dir)?;
    let free = lock
        .try_acquire(&app, &LockHolder::this_process(Some("example".into())))
        .await;
    check(
        free.is_ok(),
        match &free {
            Ok(_) => "the lock to be free".to_string(),
            Err(e) => format!("the lock to be free, not: {e}"),
        },
    )?;
    drop(free);

    println!("\n   what the proxy serves while it is parked:");
    let seen = count(proxy, host, environment).await?;
    let (new, kept) = (
        seen.get(release).copied().unwrap_or(0),
        seen.get(old.as_str()).copied().unwrap_or(0),
    );
    check(
        new + kept == COUNT,
        format!("every answer from {old} or {release} ({seen:?})"),
    )?;
    check(
        (COUNT / 10..=COUNT * 3 / 10).contains(&new),
        format!("{release} to answer about 20 % ({new} of {COUNT})"),
    )?;

    let loads: Vec<_> = [ClientMode::NewConnection, ClientMode::KeepAliveRetrying]
        .into_iter()
        .map(|mode| (mode, Load::start(LoadConfig::new(proxy, 4, mode).host(host))))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("\n== promote {app}, from a second process");
    let promoter = run_promoter(&app.to_string(), state_dir, promoter_env).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut failures = 0;
    let mut tallies: Vec<(ClientMode, Tally)> = Vec::new();
    for (mode, load) in loads {
        tallies.push((mode, load.stop().await));
    }
    let pid = promoter?;
    println!("\n   clients during the promote:");
    for (mode, tally) in &tallies {
        println!("   {mode}: {tally}");
        failures += tally.failures();
    }

    println!("\n   what the proxy serves after the promote:");
    let seen = count(proxy, host, environment).await?;
    check(seen.get(release) == Some(&COUNT), format!("only {release} ({seen:?})"))?;
    let old_status = environment.status(old_slot).await?;
    println!("   old slot {old_slot}: {old_status:?}");
    check(
        !matches!(old_status, SlotStatus::Running { .. }),
        format!("the old slot ({old_slot}, {old}) stopped"),
    )?;
    let journal = FileJournal::open(state_dir, &app)?;
    let commands: Vec<_> = journal
        .tail(20)
        .await?
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Command {
                command,
                from,
                judgement,
                ..
            } => Some((command, from, judgement)),
            _ => None,
        })
        .collect();
    for (command, from, judgement) in &commands {
        println!("   journal: {command} from {from}: {judgement:?}");
    }
    check(
        matches!(commands.as_slice(), [(Command::Promote, from, Judgement::Accepted)] if from.pid == pid),
        format!("one promote in the journal, accepted, from pid {pid}"),
    )?;
    Ok(failures)
}

/// Runs this example again as `promote <app>` with `envs`, prints its lines as they come, and
/// returns its pid once it exited successfully.
async fn run_promoter(app: &str, state_dir: &Path, envs: &[(&str, String)]) -> Result<u32> {
    let failed = |why: String| Error::backend("promoter", why, false);
    let exe = std::env::current_exe().map_err(|e| failed(e.to_string()))?;
    let mut child = tokio::process::Command::new(exe)
        .args([PROMOTE_ARG, app])
        .env(STATE_DIR_VAR, state_dir)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let pid = child.id().unwrap_or_default();
    println!("   started pid {pid}: {PROMOTE_ARG} {app}");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let run = async {
        while let Some(line) = lines.next_line().await.map_err(|e| failed(e.to_string()))? {
            println!("   [pid {pid}] {line}");
        }
        child.wait().await.map_err(|e| failed(e.to_string()))
    };
    let status = tokio::time::timeout(PROMOTER_TIMEOUT, run)
        .await
        .map_err(|_| failed(format!("pid {pid} did not finish within {PROMOTER_TIMEOUT:?}")))??;
    if !status.success() {
        return Err(failed(format!("pid {pid} failed: {status}")));
    }
    Ok(pid)
}

/// The second process: promotes the parked deployment through `deployer` (built like the first
/// process's, over the same state directory), which carries it on here; prints the timeline.
pub async fn promote_here(deployer: &Deployer) -> Result<ExitCode> {
    println!("pid {} sends promote to {}", std::process::id(), deployer.app());
    let mut events = deployer.subscribe();
    let answer = deployer.promote().await?;
    super::timeline::print(&mut events);
    match answer {
        Answer::Ran(report) => {
            println!("carried it on here: {} in {:?}", report.deployment.phase(), report.took);
            check(
                *report.deployment.phase() == Phase::Completed,
                "the deployment to complete".into(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        other => {
            println!("not carried on here: {other:?}");
            Ok(ExitCode::FAILURE)
        }
    }
}
