//! Command benchmark (issue 11): a command's time from send to answer when it comes from another
//! OS process, against the same command from another task of the deploying process, with the
//! floors measured in the same run.
//!
//! Every deployer uses a `state_dir` (a `FileJournal` that fsyncs each entry, a `FileLock`, the
//! command socket) and the persistent in-memory backends, so only the command path is measured.
//! One sample is one `promote()`, from the call to its answer. Prints one markdown table:
//! 1. floors, no bluegreen: a bare tokio `UnixStream` round trip between two processes (connect,
//!    one line each way), and a journal-sized line appended to a file and fsync'd (`sync_data`, as
//!    `FileJournal` does); and the journal's own: one entry appended to a `FileJournal`, no command.
//!    Each is a tight loop: on a machine short of CPU, back-to-back fsyncs can each pay a
//!    scheduler tick (about 4 ms) that commands, paced by their own work, mostly do not;
//! 2. **accepted**: a canary with one `PauseUntilApproved` gate per command runs in this process;
//!    the sender promotes the gate it waits at, and sends the next promote once the deployment
//!    waits at the next gate (it watches the journal; that wait is not timed). The command is
//!    judged, journaled with its transition (one fsync) and answered;
//! 3. **refused**: promotes sent while the deployment waits out its rollback window (`Warm` takes
//!    no approval): judged, journaled as refused (one fsync), answered; no transition;
//! 4. **parked**: with `park_at_gates(true)` the deploy returns parked at its first gate; each
//!    promote takes the lock, reads the journal and carries the deployment on to the next gate
//!    (a shift, confirmed, then parked again), all in the sender.
//!
//! Each kind is measured in-process (the deploying `Deployer`'s clone, from another task: the
//! in-process channel; for parked, the deployer that deployed) and from a second process: this
//! example again, run as `bench_commands sender <kind> <dir> <n>` (or `raw-client <socket> <n>`
//! for the floor), which builds its own `Deployer` over the same state directory, sends `n`
//! commands one after the other, checks and times each, and prints the samples as one JSON line.
//! Every answer is checked (accepted by the deploying process, refused, or run to the next parked
//! gate); a wrong one ends the run with an error. A sender's first command is timed like the
//! others (its first connection, its first journal read).
//!
//! The rows are measured in rounds (10 by default), every row in each round with fresh deployments
//! and an order that rotates, so that the load of a shared machine weighs on every row alike; the
//! ratio column compares each row with the in-process row of its kind in the same run. The
//! target (issue 11) is p50 ≤ 20 ms and p99 ≤ 100 ms for a cross-process command; the run says
//! whether each kind meets it (it does not fail on a miss: that is a number to read, not a test).
//!
//! ```text
//! cargo run --release --example bench_commands
//! cargo run --release --example bench_commands -- --commands 40 --rounds 2   # a quick look
//! ```

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::journal::{FileJournal, Journal};
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{
    Answer, AppName, BlueGreen, Canary, CanaryStep, Conflict, Deployer, Error, HealthPolicy, Phase, Promotion, Release,
    Retirement,
};
use bluegreen_testkit::stats::{ms, ratio, Samples, Table};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Commands per row, in all (`--commands N`).
const COMMANDS: usize = 400;
/// Rounds the rows are interleaved in (`--rounds N`): each round measures every row, in an order
/// that rotates, with fresh deployments of `COMMANDS / ROUNDS` gates.
const ROUNDS: usize = 10;
/// The size of the line the fsync floor appends (about a journal entry of these canaries).
const FSYNC_LINE: usize = 2048;
/// The targets issue 11 sets for a cross-process command.
const TARGET_P50: Duration = Duration::from_millis(20);
const TARGET_P99: Duration = Duration::from_millis(100);
/// How long a sender may wait for the deployment to be ready for its next command.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a sender process may take for all its commands.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
/// The rollback window the refused rows send their promotes in (the run aborts it when done).
const WARM_WINDOW: Duration = Duration::from_secs(600);
const APP: &str = "bench";

type BenchResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What a command meets, and so what its answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A deployment waiting at a gate in the deploying process: `Answer::Accepted`.
    Accepted,
    /// A deployment waiting out its rollback window: `Conflict::Refused`.
    Refused,
    /// A deployment parked at a gate: `Answer::Ran`, parked at the next gate.
    Parked,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Accepted, Kind::Refused, Kind::Parked];

    fn name(self) -> &'static str {
        match self {
            Kind::Accepted => "accepted",
            Kind::Refused => "refused",
            Kind::Parked => "parked",
        }
    }

    fn parse(name: &str) -> BenchResult<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| format!("unknown command kind {name:?} (accepted, refused or parked)").into())
    }

    /// The row's label.
    fn label(self, across: bool) -> String {
        let from = if across {
            "from another process (socket)"
        } else {
            "in-process (another task)"
        };
        match self {
            Kind::Accepted => format!("promote accepted at a gate, {from}"),
            Kind::Refused => format!("promote refused (warm), {from}"),
            Kind::Parked if across => {
                "promote of a parked gate, from another process (lock, journal, run to the next gate)".into()
            }
            Kind::Parked => "promote of a parked gate, in the process that parked it".into(),
        }
    }

    /// The deployer every process of this kind builds over `dir` for `n` commands: the same
    /// strategy everywhere (a parked deployment is carried on only with the strategy it started).
    fn deployer(self, dir: &Path, n: usize, who: &str) -> BenchResult<Deployer> {
        let env = InMemoryEnvironment::persistent(dir.join("environment.json"))?;
        let router = InMemoryRouter::persistent(dir.join("router.json"))?;
        let instant = Retirement::new()
            .rollback_window(Duration::ZERO)
            .drain(Duration::ZERO)
            .stop_grace(Duration::ZERO);
        let builder = Deployer::builder(AppName::new(APP)?)
            .environment(Arc::new(env.clone()))
            .router(Arc::new(router))
            .probe(env.health_probe())
            .policy(HealthPolicy::default().interval(Duration::from_millis(1)))
            .state_dir(dir.join("state"))
            .who(who);
        let builder = match self {
            Kind::Accepted => builder.strategy(canary(n)?).retirement(instant),
            Kind::Refused => builder
                .strategy(BlueGreen::new().promotion(Promotion::Auto))
                .retirement(instant.rollback_window(WARM_WINDOW)),
            // One gate more than commands: every timed promote ends parked at the next gate.
            Kind::Parked => builder.strategy(canary(n + 1)?).retirement(instant).park_at_gates(true),
        };
        Ok(builder.build()?)
    }

    /// Whether the deployment `phase` is ready for this kind's next command.
    fn ready(self, phase: &Phase) -> bool {
        match self {
            Kind::Accepted => matches!(phase, Phase::Paused { .. }),
            Kind::Refused => *phase == Phase::Warm,
            Kind::Parked => true,
        }
    }

    /// Checks that `answer` is what this kind's command must get; `runner` is the deploying process.
    fn check(self, answer: bluegreen_core::Result<Answer>, runner: u32) -> BenchResult<()> {
        match (self, answer) {
            (Kind::Accepted, Ok(Answer::Accepted { by_pid, .. })) if by_pid == runner => Ok(()),
            (Kind::Refused, Err(Error::Conflict(Conflict::Refused { .. }))) => Ok(()),
            (Kind::Parked, Ok(Answer::Ran(report))) if report.deployment.parked().is_some() => Ok(()),
            (kind, other) => Err(format!("a {} command (deployer pid {runner}) got {other:?}", kind.name()).into()),
        }
    }
}

/// One row of the table: a floor, or a command of a kind, in-process or from another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    /// A bare Unix socket round trip between two processes.
    Socket,
    /// One journal-sized line appended and fsync'd.
    Fsync,
    /// One entry appended to a `FileJournal`, no command.
    Journal,
    /// `promote()` of `Kind`, from another process when `true`.
    Command(Kind, bool),
}

impl Row {
    const ALL: [Row; 9] = [
        Row::Socket,
        Row::Fsync,
        Row::Journal,
        Row::Command(Kind::Accepted, false),
        Row::Command(Kind::Accepted, true),
        Row::Command(Kind::Refused, false),
        Row::Command(Kind::Refused, true),
        Row::Command(Kind::Parked, false),
        Row::Command(Kind::Parked, true),
    ];

    /// A short name, for directories.
    fn name(self) -> String {
        match self {
            Row::Socket => "socket".into(),
            Row::Fsync => "fsync".into(),
            Row::Journal => "journal".into(),
            Row::Command(kind, across) => format!("{}-{}", kind.name(), if across { "x" } else { "in" }),
        }
    }

    fn label(self) -> String {
        match self {
            Row::Socket => {
                "floor: Unix socket round trip between two processes (connect, one line each way; no bluegreen)".into()
            }
            Row::Fsync => format!("floor: append a {FSYNC_LINE}-byte line to a file + fsync (no bluegreen)"),
            Row::Journal => "floor: `FileJournal::append` of one entry (write + fsync; no command)".into(),
            Row::Command(kind, across) => kind.label(across),
        }
    }

    /// `n` samples of this row, in a fresh directory `dir`.
    async fn measure(self, dir: &Path, n: usize) -> BenchResult<Vec<Duration>> {
        tokio::fs::create_dir_all(dir).await?;
        match self {
            Row::Socket => raw_round_trips(dir, n).await,
            Row::Fsync => raw_fsyncs(dir, FSYNC_LINE, n).await,
            Row::Journal => journal_appends(dir, n).await,
            Row::Command(kind, across) => measure(kind, n, dir, across).await,
        }
    }
}

/// A canary of `gates` approval gates, the weight rising slowly from 1 % to 99 %.
fn canary(gates: usize) -> BenchResult<Canary> {
    let steps = (0..gates)
        .flat_map(|i| {
            let weight = 1 + (i * 98 / gates.max(1)) as u8;
            [CanaryStep::SetWeight(weight), CanaryStep::PauseUntilApproved]
        })
        .collect();
    Ok(Canary::new(steps)?)
}

fn release(v: &str) -> BenchResult<Release> {
    Ok(Release::new(v)?)
}

/// Sends `n` promotes of `kind` through `deployer` one after the other, each once the deployment
/// is ready for it (read from `journal`, not timed); the time of each from send to answer.
async fn send_commands(
    deployer: &Deployer,
    journal: &FileJournal,
    kind: Kind,
    n: usize,
    runner: u32,
) -> BenchResult<Vec<Duration>> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        wait_ready(journal, kind).await?;
        let sent = Instant::now();
        let answer = deployer.promote().await;
        samples.push(sent.elapsed());
        kind.check(answer, runner)?;
    }
    Ok(samples)
}

/// Waits until the journal's last entry is a deployment ready for `kind`'s next command.
async fn wait_ready(journal: &FileJournal, kind: Kind) -> BenchResult<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let last = journal.tail(1).await?.pop();
        let phase = last.as_ref().map(|e| e.deployment.phase());
        if phase.is_some_and(|p| kind.ready(p)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the deployment was not ready for a {} command within {READY_TIMEOUT:?} (last phase: {phase:?})",
                kind.name()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Measures `kind` with `n` commands, from this process or from a second one, in `dir`.
async fn measure(kind: Kind, n: usize, dir: &Path, across: bool) -> BenchResult<Vec<Duration>> {
    let deployer = kind.deployer(dir, n, "bench-runner")?;
    deployer.deploy(release("v1")?).await?;
    let journal = FileJournal::open(dir.join("state"), &AppName::new(APP)?)?;
    let running = if kind == Kind::Parked {
        let parked = deployer.deploy(release("v2")?).await?;
        if parked.deployment.parked().is_none() {
            return Err(format!("the deployment did not park at its first gate: {:?}", parked.deployment).into());
        }
        None
    } else {
        let deployer = deployer.clone();
        Some(tokio::spawn(async move { deployer.deploy(Release::new("v2")?).await }))
    };
    let sent = if across {
        let args = ["sender".into(), kind.name().into(), dir.into(), n.to_string().into()];
        run_child(args).await
    } else {
        send_commands(&deployer, &journal, kind, n, std::process::id()).await
    };
    let Some(running) = running else {
        return sent;
    };
    let samples = match sent {
        Ok(samples) => samples,
        Err(e) => {
            running.abort();
            return Err(e);
        }
    };
    if kind == Kind::Refused {
        deployer.abort("benchmark over").await?;
    }
    match (kind, running.await?) {
        (Kind::Accepted, Ok(report)) if *report.deployment.phase() == Phase::Completed => Ok(samples),
        (Kind::Refused, Err(Error::RolledBack { .. })) => Ok(samples),
        (_, other) => Err(format!("the {} deployment ended unexpectedly: {other:?}", kind.name()).into()),
    }
}

/// Runs this example again with `args` and reads the samples it prints (one JSON line).
async fn run_child<const N: usize>(args: [OsString; N]) -> BenchResult<Vec<Duration>> {
    let child = tokio::process::Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let output = tokio::time::timeout(CHILD_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("the sender process took longer than {CHILD_TIMEOUT:?}"))??;
    if !output.status.success() {
        return Err(format!("the sender process failed: {}", output.status).into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let nanos: Vec<u64> = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| serde_json::from_value(v["nanos"].clone()).ok())
        .ok_or_else(|| format!("the sender process printed no samples: {line:?}"))?;
    Ok(nanos.into_iter().map(Duration::from_nanos).collect())
}

/// Prints `samples` as the one JSON line the parent reads.
fn print_samples(samples: &[Duration]) {
    let nanos: Vec<u64> = samples.iter().map(|d| d.as_nanos() as u64).collect();
    println!("{}", serde_json::json!({ "nanos": nanos }));
}

/// The second process's side of a row: `sender <kind> <dir> <n>`.
async fn sender(kind: Kind, dir: &Path, n: usize) -> BenchResult<()> {
    let deployer = kind.deployer(dir, n, "bench-sender")?;
    let journal = FileJournal::open(dir.join("state"), &AppName::new(APP)?)?;
    let runner = std::os::unix::process::parent_id();
    print_samples(&send_commands(&deployer, &journal, kind, n, runner).await?);
    Ok(())
}

/// The floor: a bare Unix socket round trip between two processes. This process echoes one line
/// per connection; the client (`raw-client <socket> <n>`) connects, writes a line, reads it back.
async fn raw_round_trips(dir: &Path, n: usize) -> BenchResult<Vec<Duration>> {
    let path = dir.join("raw.sock");
    let listener = UnixListener::bind(&path)?;
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_ok() {
                    let _ = write.write_all(line.as_bytes()).await;
                }
            });
        }
    });
    let samples = run_child(["raw-client".into(), path.into(), n.to_string().into()]).await;
    server.abort();
    samples
}

/// The client of [`raw_round_trips`].
async fn raw_client(path: &Path, n: usize) -> BenchResult<()> {
    let message = b"{\"id\":\"cmd-0\",\"command\":\"promote\",\"who\":\"bench-sender\"}\n";
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let sent = Instant::now();
        let mut stream = UnixStream::connect(path).await?;
        stream.write_all(message).await?;
        let mut line = String::new();
        BufReader::new(&mut stream).read_line(&mut line).await?;
        samples.push(sent.elapsed());
        if line.as_bytes() != message {
            return Err(format!("the echo came back as {line:?}").into());
        }
    }
    print_samples(&samples);
    Ok(())
}

/// The journal's floor: `n` appends of a `bytes`-long line to a file, each followed by fsync
/// (`sync_data`, as `FileJournal` does).
async fn raw_fsyncs(dir: &Path, bytes: usize, n: usize) -> BenchResult<Vec<Duration>> {
    let path = dir.join("raw.jsonl");
    let samples = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<Duration>> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let mut line = vec![b'x'; bytes.max(1)];
        *line.last_mut().expect("not empty") = b'\n';
        (0..n)
            .map(|_| {
                let t = Instant::now();
                file.write_all(&line)?;
                file.sync_data()?;
                Ok(t.elapsed())
            })
            .collect()
    })
    .await??;
    Ok(samples)
}

/// The journal's own floor: `n` appends of an entry of a real deployment (its last one, again with
/// the next sequence numbers) to the `FileJournal` of `dir`'s state directory, one after the other.
async fn journal_appends(dir: &Path, n: usize) -> BenchResult<Vec<Duration>> {
    let deployer = Kind::Accepted.deployer(dir, n, "bench-runner")?;
    deployer.deploy(release("v1")?).await?;
    let journal = FileJournal::open(dir.join("state"), &AppName::new(APP)?)?;
    let mut entry = journal.tail(1).await?.pop().ok_or("the deployment journaled nothing")?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        entry.seq += 1;
        let t = Instant::now();
        journal.append(&entry).await?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

/// The mean size of a journal entry in `dir`'s state directory.
async fn mean_entry_bytes(dir: &Path) -> BenchResult<usize> {
    let journal = FileJournal::open(dir.join("state"), &AppName::new(APP)?)?;
    let entries = journal.tail(1).await?.first().map_or(1, |e| e.seq.max(1));
    let bytes = tokio::fs::metadata(journal.path()).await?.len();
    Ok((bytes / entries) as usize)
}

/// One line of machine facts for the heading.
async fn machine() -> String {
    let read = |path: &'static str| async move { tokio::fs::read_to_string(path).await.unwrap_or_default() };
    let cpuinfo = read("/proc/cpuinfo").await;
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)))
        .map_or("unknown CPU", str::trim)
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = read("/proc/sys/kernel/osrelease").await;
    let load = read("/proc/loadavg").await;
    let load = load.split_whitespace().next().unwrap_or("?");
    format!(
        "{cpu}, {cores} cores, Linux {}, load average {load} at start",
        kernel.trim()
    )
}

/// Options of the parent run.
struct Options {
    /// Commands per row, in all.
    commands: usize,
    /// Rounds the rows are interleaved in.
    rounds: usize,
}

fn options(args: &[String]) -> BenchResult<Options> {
    let mut options = Options {
        commands: COMMANDS,
        rounds: ROUNDS,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--commands" => &mut options.commands,
            "--rounds" => &mut options.rounds,
            other => return Err(format!("unknown argument {other:?} (--commands N, --rounds N)").into()),
        };
        let value = args.next().ok_or_else(|| format!("{arg} needs a number"))?;
        *slot = value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{arg} {value:?}: not a positive number"))?;
    }
    Ok(options)
}

fn count(value: &str) -> BenchResult<usize> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not a number of commands").into())
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["sender", kind, dir, n] => return sender(Kind::parse(kind)?, Path::new(dir), count(n)?).await,
        ["raw-client", path, n] => return raw_client(Path::new(path), count(n)?).await,
        _ => {}
    }
    let Options { commands, rounds } = options(&args)?;
    let per_round = commands.div_ceil(rounds);
    let started = Instant::now();
    let root = tempfile::Builder::new().prefix("bg-cmd-").tempdir()?;

    println!(
        "## Commands: send → answer ({} per row in {rounds} interleaved rounds; file journal, fsync per entry; \
         in-memory backends)\n",
        per_round * rounds
    );
    println!("machine: {}\n", machine().await);

    let mut rows: Vec<(Row, Vec<Duration>)> = Row::ALL.iter().map(|row| (*row, Vec::new())).collect();
    for round in 0..rounds {
        // A different row first each round, so that the machine's load weighs on every row alike.
        for i in 0..rows.len() {
            let (row, samples) = &mut rows[(i + round) % Row::ALL.len()];
            let dir = root.path().join(format!("{}-{round}", row.name()));
            samples.extend(row.measure(&dir, per_round).await?);
        }
    }
    let rows: Vec<(Row, Samples)> = rows.into_iter().map(|(row, s)| (row, samples(s))).collect();
    let in_process = |kind: Kind| {
        rows.iter()
            .find(|(row, _)| *row == Row::Command(kind, false))
            .map(|(_, s)| s.p50())
            .unwrap_or_default()
    };
    let mut table = Table::new(&[
        "command path",
        "n",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "mean ms",
        "vs in-process (p50)",
    ]);
    let mut add = |label: String, samples: &Samples, baseline: Duration| {
        table.row(vec![
            label,
            samples.len().to_string(),
            ms(samples.p50()),
            ms(samples.percentile(90.0)),
            ms(samples.p99()),
            ms(samples.percentile(100.0)),
            ms(samples.mean()),
            ratio(samples.p50(), baseline),
        ]);
    };
    for (row, samples) in &rows {
        let baseline = match row {
            Row::Socket | Row::Fsync | Row::Journal => in_process(Kind::Accepted),
            Row::Command(kind, _) => in_process(*kind),
        };
        add(row.label(), samples, baseline);
    }
    println!("{}", table.render());
    println!(
        "\"vs in-process\": p50 against the in-process row of the same kind (the floors: against the \
         in-process accepted promote). The floors are tight loops: on a machine short of CPU, \
         back-to-back fsyncs can each pay a scheduler tick (~4 ms) that paced commands mostly do not."
    );
    let verdicts: Vec<String> = rows
        .iter()
        .filter_map(|(row, s)| match row {
            Row::Command(kind, true) => Some((kind, s)),
            _ => None,
        })
        .map(|(kind, s)| {
            let met = s.p50() <= TARGET_P50 && s.p99() <= TARGET_P99;
            format!(
                "{} {} (p50 {} ms, p99 {} ms)",
                kind.name(),
                if met { "met" } else { "NOT met" },
                ms(s.p50()),
                ms(s.p99())
            )
        })
        .collect();
    println!(
        "targets for a cross-process command (p50 ≤ {} ms, p99 ≤ {} ms): {}.",
        TARGET_P50.as_millis(),
        TARGET_P99.as_millis(),
        verdicts.join("; ")
    );
    let entry = mean_entry_bytes(
        &root
            .path()
            .join(format!("{}-0", Row::Command(Kind::Accepted, false).name())),
    )
    .await?;
    println!(
        "\nA journal entry of the accepted rows is {entry} bytes on average (each carries the whole deployment, its steps as a fingerprint); \
         the fsync floor appends {FSYNC_LINE} bytes."
    );
    println!("\n(whole run: {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// `Samples` from durations.
fn samples(values: Vec<Duration>) -> Samples {
    let mut samples = Samples::new();
    for value in values {
        samples.push(value);
    }
    samples
}
