//! One scenario: a child deploys the other release and is killed; children resuming it may be
//! killed too; then this process resumes, checks what converged, and deploys once more.
//!
//! The scenarios are chained on one application, one journal and one nginx under load: each
//! starts from the release the previous one left live, and its last deploy (the one that proves
//! nothing is left locked or half-done) leaves the next one's starting point.

use std::sync::Arc;
use std::time::Instant;

use bluegreen_core::journal::{Entry, FileJournal, Journal, Record};
use bluegreen_core::{Deployer, Observation, Phase, Release, Report, Result, Router, Routes, Serving};
use bluegreen_docker::Engine;
use bluegreen_nginx::ReloadCommand;
use bluegreen_testkit::load::{request_once, ClientMode, Load, LoadConfig, Outcome, Tally};

use super::kill::{run_child, ChildRan, Count, Kill};
use super::setup::Setup;

/// The two releases the scenarios alternate between.
pub const RELEASES: [&str; 2] = ["v1", "v2"];

/// Requests sent through nginx, each on a new connection, to see what a user sees after
/// convergence.
const PROBES: usize = 20;

/// Everything the scenarios share.
pub struct Rig {
    pub setup: Setup,
    pub engine: Engine,
    /// The load through nginx, by kind of client.
    pub loads: Vec<(ClientMode, Load)>,
    /// How a user's request reaches nginx.
    pub user: LoadConfig,
    /// The release live now (the next scenario deploys the other one).
    pub live: Release,
}

/// What a scenario ended with.
pub struct Ran {
    /// The summary line.
    pub line: String,
    /// The last child finished before its kill point: the end of a walk.
    pub finished: bool,
}

/// Failed and total requests of each kind of client.
type Counts = Vec<(ClientMode, u64, u64)>;

impl Rig {
    /// The restarted deployer: fresh objects over the same Docker application, nginx and files,
    /// reloading nginx the ordinary way.
    fn deployer(&self) -> (Deployer, Arc<FileJournal>, Arc<dyn Router>) {
        let journal = Arc::new(self.setup.journal());
        let router: Arc<dyn Router> = Arc::new(self.setup.router(ReloadCommand::Nginx));
        let environment = Arc::new(self.setup.environment(self.engine.clone()));
        let deployer = self.setup.deployer(environment, router.clone(), journal.clone());
        (deployer, journal, router)
    }

    /// Deploys `release` in this process (the first release, and the deploy after each scenario).
    pub async fn deploy(&mut self, release: &Release) -> Report {
        let (deployer, _, _) = self.deployer();
        let report = deployer.deploy(release.clone()).await.unwrap();
        assert_eq!(*report.deployment.phase(), Phase::Completed);
        check_live(self, &deployer, release).await;
        self.live = release.clone();
        report
    }

    fn counts(&self) -> Counts {
        self.loads
            .iter()
            .map(|(mode, load)| {
                let tally: Tally = load.tally();
                (*mode, tally.failures(), tally.total())
            })
            .collect()
    }
}

/// "2 of 1450 failed (new-conn 0/700, retrying 2/750)", counting since `before`.
fn since(before: &Counts, after: &Counts) -> String {
    let mut failed = 0;
    let mut total = 0;
    let mut parts = Vec::new();
    for ((mode, f0, t0), (_, f1, t1)) in before.iter().zip(after) {
        failed += f1 - f0;
        total += t1 - t0;
        let kind = match mode {
            ClientMode::NewConnection => "new-conn",
            ClientMode::KeepAliveRetrying => "retrying",
            ClientMode::KeepAlive => "keep-alive",
        };
        parts.push(format!("{kind} {}/{}", f1 - f0, t1 - t0));
    }
    format!("{failed} of {total} failed ({})", parts.join(", "))
}

fn other(release: &Release) -> Release {
    let name = if release.as_str() == RELEASES[0] {
        RELEASES[1]
    } else {
        RELEASES[0]
    };
    Release::new(name).unwrap()
}

async fn last_entry(journal: &FileJournal) -> Entry {
    assert_eq!(journal.torn_tail(), None);
    journal.tail(1).await.unwrap().pop().unwrap()
}

/// "v1@green 100% confirmed" / "… stale": what the router's file says and whether nginx serves it.
fn describe(observed: &Observation) -> String {
    let routes = observed
        .configured
        .as_ref()
        .map_or_else(|| "nothing".to_string(), |r| r.split().to_string());
    let serving = match &observed.serving {
        Serving::Confirmed => "served",
        Serving::Stale(_) => "NOT served (stale)",
        Serving::Foreign(_) => "foreign",
        Serving::Unreachable(_) => "unreachable",
        _ => "unobservable",
    };
    format!("file {routes}, {serving}")
}

/// A killed child, and the journal's last entry after it died.
struct Killed {
    pid: u32,
    at: String,
    last: Entry,
}

/// Runs one scenario: a child deploying the other release killed at `kills[0]`; children resuming
/// killed at each later kill; then this process resumes, checks, and deploys once more.
pub async fn scenario(rig: &mut Rig, kills: &[Kill]) -> Ran {
    let started = Instant::now();
    let (old, new) = (rig.live.clone(), other(&rig.live));
    let journal = rig.setup.journal();
    let mut seq = last_entry(&journal).await.seq;
    let counts_at_start = rig.counts();

    let mut killed: Vec<Killed> = Vec::new();
    let mut finished = None;
    let mut at_kill = None;
    for (i, &kill) in kills.iter().enumerate() {
        let action = if i == 0 {
            format!("deploy {new}")
        } else {
            "resume".to_string()
        };
        match run_child(&rig.setup, &action, kill).await {
            ChildRan::Killed { pid, at } => {
                let last = last_entry(&rig.setup.journal()).await;
                if let Kill(Count::Entries, n) = kill {
                    assert_eq!(last.seq, seq + n as u64, "the child froze after its entry {n}");
                }
                seq = last.seq;
                killed.push(Killed { pid, at, last });
                let (_, _, router) = rig.deployer();
                let observed = router.observe().await.unwrap();
                if kill.0 == Count::Reloads {
                    // The file was written and tested, nginx never told: nginx serves the
                    // generation before it.
                    assert!(
                        matches!(observed.serving, Serving::Stale(_)),
                        "killed before the reload, yet nginx is {}",
                        observed.serving
                    );
                }
                // What users get while no deployer runs.
                let answer = match request_once(&rig.user).await {
                    Outcome::Response { status, version } => format!("users get {status} {version}"),
                    Outcome::Error(e) => format!("users get {e}"),
                };
                at_kill = Some(format!("{}; {answer}", describe(&observed)));
            }
            ChildRan::Finished(outcome) => {
                finished = Some(outcome);
                break;
            }
        }
    }
    if killed.is_empty() {
        // The deploy finished before its kill point: the end of a walk, checked like any other.
        assert_eq!(finished.as_deref(), Some("completed"));
        let (deployer, _, _) = rig.deployer();
        assert!(deployer.resume().await.unwrap().is_none(), "nothing to resume");
        check_live(rig, &deployer, &new).await;
        rig.live = new;
        return Ran {
            line: format!(
                "{:<12} not reached: the deploy completed on its own",
                kills[0].describe()
            ),
            finished: true,
        };
    }

    // The restarted deployer: fresh objects over the same files, containers and nginx.
    let (deployer, journal, _) = rig.deployer();
    let before = last_entry(&journal).await;
    let status = deployer.status().await.unwrap();
    assert_eq!(status.in_progress(), !before.deployment.phase().is_terminal());
    let counts_at_resume = rig.counts();
    let resumed = deployer.resume().await;
    let promoted = killed[0].last.deployment.promoted();
    let live = if promoted { &new } else { &old };
    let checked = check_converged(&deployer, &journal, &before, resumed, &killed).await;
    check_live(rig, &deployer, live).await;
    rig.live = live.clone();
    let counts_converged = rig.counts();
    if let Some(said) = &finished {
        assert!(
            said == checked || said == "nothing to resume",
            "a resume finished {said}, the parent found {checked}"
        );
    }

    // Nothing is left locked or half-done: the next deploy goes through.
    let next = other(live);
    rig.deploy(&next).await;

    let first = &killed[0];
    let mut line = format!(
        "{:<12} killed at: {:<58} promoted={:<5}",
        kills[0].describe(),
        first.at,
        first.last.deployment.promoted(),
    );
    for (kill, k) in kills[1..].iter().zip(&killed[1..]) {
        line.push_str(&format!(
            "\n  then resume {:<12} killed at: {:<50}",
            kill.describe(),
            k.at
        ));
    }
    if let Some(outcome) = &finished {
        line.push_str(&format!("\n  then a resume finished: {outcome}"));
    }
    let during = since(&counts_at_start, &counts_at_resume);
    let converging = since(&counts_at_resume, &counts_converged);
    line.push_str(&format!(
        "\n  nginx at the last kill: {}\n  -> {checked}, {live} live; requests while killed: {during}; while converging: {converging}; {:.1?} in all",
        at_kill.expect("a kill"),
        started.elapsed(),
    ));
    Ran {
        line,
        finished: finished.is_some(),
    }
}

/// Checks the journal and what `resume` returned: rolled back iff the deployment had not been
/// promoted, with the reason, the lock taken over from every killed child, and nothing else
/// unfinished. Returns the phase it converged to.
async fn check_converged(
    deployer: &Deployer,
    journal: &FileJournal,
    before: &Entry,
    resumed: Result<Option<Report>>,
    killed: &[Killed],
) -> &'static str {
    let interrupted = &killed[0].last.deployment;
    let promoted = interrupted.promoted();
    let nothing_to_do = before.deployment.phase().is_terminal();
    for k in killed {
        assert_eq!(k.last.deployment.id(), interrupted.id(), "one deployment throughout");
        assert_eq!(
            k.last.deployment.promoted(),
            promoted,
            "a resume never changes promotion"
        );
    }
    let expected = if promoted { Phase::Completed } else { Phase::RolledBack };
    match (&resumed, promoted) {
        (Ok(None), _) => assert!(
            nothing_to_do,
            "resume found nothing to do in {}",
            before.deployment.phase()
        ),
        (Ok(Some(report)), _) => assert_eq!(*report.deployment.phase(), expected, "{:#?}", report.deployment),
        (Err(e), _) => panic!(
            "after a kill at {} (promoted={promoted}), resume failed: {e}",
            before.deployment.phase()
        ),
    }

    let entries = journal.tail(usize::MAX).await.unwrap();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.seq, i as u64 + 1, "journal seq numbers have a gap or repeat");
    }
    let last = entries.last().unwrap();
    assert_eq!(last.deployment.id(), interrupted.id());
    assert_eq!(
        *last.deployment.phase(),
        expected,
        "after a kill at {}",
        interrupted.phase()
    );
    if !promoted {
        let why = format!(
            "the deployer stopped while {} before promotion",
            interrupted.phase().name()
        );
        assert_eq!(last.deployment.reason(), Some(why.as_str()));
    }
    let notes: Vec<&str> = entries
        .iter()
        .filter(|e| e.seq > killed[0].last.seq)
        .filter_map(|e| match &e.record {
            Record::Note { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    for k in killed {
        let took_over = format!("took the lock over from a holder that died: pid {} on ", k.pid);
        assert!(
            notes.iter().any(|n| n.starts_with(&took_over)),
            "no note of the lock taken over from pid {}: {notes:#?}",
            k.pid
        );
    }
    let history: Vec<&str> = deployer
        .history(1)
        .await
        .unwrap()
        .iter()
        .map(|d| d.phase().name())
        .collect();
    assert_eq!(history, [expected.name()]);
    expected.name()
}

/// What a user sees: `release` answers every request through nginx, `status` says it is live,
/// confirmed, with no drift, and the other slot does not run.
async fn check_live(rig: &Rig, deployer: &Deployer, release: &Release) {
    let status = deployer.status().await.unwrap();
    assert_eq!(status.serving, Serving::Confirmed, "{status:#?}");
    assert!(status.drift.is_empty(), "drift: {:#?}", status.drift);
    assert_eq!(status.live_release(), Some(release), "{status:#?}");
    assert!(!status.in_progress(), "{status:#?}");
    let live = status.live_slot().unwrap();
    let idle = status.slot(live.other());
    assert_eq!(idle.endpoints(), None, "the other slot still runs: {idle:?}");
    let endpoint = status.slot(live).endpoints().unwrap().clone();
    assert_eq!(status.routes, Some(Routes::only(live, endpoint)));
    for _ in 0..PROBES {
        let outcome = request_once(&rig.user).await;
        let expected = Outcome::Response {
            status: 200,
            version: release.to_string(),
        };
        assert_eq!(outcome, expected, "a request through nginx after convergence");
    }
}

/// Kills a child after each of its events that `count` counts, from the first until it finishes
/// on its own; `prefix` are earlier kills (the deploy's, for a walk of the resume's). Prints one
/// line per scenario; returns how many kill points there were.
pub async fn walk(rig: &mut Rig, prefix: &[Kill], count: Count) -> usize {
    let started = Instant::now();
    let strategy = if rig.setup.canary { "canary" } else { "blue-green" };
    let who = if prefix.is_empty() {
        format!("{strategy} deploy")
    } else {
        let first: Vec<String> = prefix.iter().map(|k| k.describe()).collect();
        format!("resume after a {strategy} deploy killed at {}", first.join(", "))
    };
    println!("\n== {who}, killed after each of its {}", count.name());
    for n in 1.. {
        let mut kills = prefix.to_vec();
        kills.push(Kill(count, n));
        let ran = scenario(rig, &kills).await;
        println!("{}", ran.line);
        if ran.finished {
            println!(
                "== {} kill points, then it finished on its own; {:.1?}",
                n - 1,
                started.elapsed()
            );
            return n - 1;
        }
        assert!(n < 30, "the child never finished");
    }
    unreachable!()
}
