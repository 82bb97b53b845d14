//! `NginxRouter` never blocks the async runtime: on a current-thread runtime (one thread runs
//! every task), a task ticking every millisecond keeps being served while `apply` writes, tests,
//! reloads and confirms against a real nginx.
//!
//! Two measures, taken by the ticker between consecutive ticks, neither counting the time the
//! thread waited for a CPU (a loaded machine deschedules threads for 100 ms and more; the kernel's
//! `schedstat` says how long):
//! - the gap between ticks, which must stay far under the ~100 ms `apply` confirms for (nginx
//!   lets the old workers accept that long): blocking of any kind, on the CPU or off it (a read
//!   waiting for a disk, a sleep), shows there;
//! - the CPU time the runtime's thread spent between two ticks: blocking work done on the
//!   runtime (a `/proc` scan, a file read, a child polled with sleeps) shows there, so this
//!   bound can be tight.
//!
//! The host is made as busy as a production one: a crowd of sleeping processes makes every full
//! `/proc` scan cost what it costs there (several milliseconds), so a scan on the runtime's thread
//! cannot hide below the bound. (Before 0.1 the router scanned `/proc` on the runtime at every
//! confirmation poll; this test failed then.)

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use bluegreen_core::{Endpoint, Router, Routes, Slot};
use rustix::process::{kill_process_group, Pid, Signal};
use rustix::time::{clock_gettime, ClockId};

/// The most CPU time the runtime's thread may spend between two ticks (a debug build's HTTP
/// request or process spawn takes about 1 ms; a full `/proc` scan among the crowd, several).
const MAX_CPU_GAP: Duration = Duration::from_millis(3);

/// Sleeping processes added to the host for the test.
const CROWD: usize = 400;

/// A process group of `CROWD` sleeping processes, killed when dropped.
struct Crowd(Child);

impl Crowd {
    fn start() -> Crowd {
        let script = format!("for i in $(seq {CROWD}); do sleep 300 & done; wait");
        let child = Command::new("bash")
            .args(["-c", &script])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        let crowd = Crowd(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            if children.split_whitespace().count() >= CROWD {
                return crowd;
            }
            assert!(
                Instant::now() < deadline,
                "the crowd of {CROWD} processes did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.0.id() as i32).unwrap();
        let _ = kill_process_group(group, Signal::KILL);
        let _ = self.0.wait();
    }
}

/// The CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// How long the calling thread has waited on a run queue for a CPU (`schedstat`'s second field).
fn thread_queued() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let nanos = stat
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("schedstat");
    Duration::from_nanos(nanos)
}

/// The most the ticker may wait between ticks, its waits for a CPU not counted.
const MAX_GAP: Duration = Duration::from_millis(20);

/// The largest gaps a 1 ms ticker saw: in wall-clock time, the same without the waits for a CPU,
/// and in its thread's CPU time.
#[derive(Debug, Default)]
struct Gaps {
    ticks: u32,
    wall: Duration,
    held: Duration,
    cpu: Duration,
}

/// Ticks every millisecond until `stop` is set, recording the largest gaps.
async fn ticker(stop: Arc<AtomicBool>) -> Gaps {
    let mut gaps = Gaps::default();
    let (mut wall, mut queued, mut cpu) = (Instant::now(), thread_queued(), thread_cpu());
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let (now_wall, now_queued, now_cpu) = (Instant::now(), thread_queued(), thread_cpu());
        gaps.ticks += 1;
        let gap = now_wall - wall;
        gaps.wall = gaps.wall.max(gap);
        gaps.held = gaps.held.max(gap.saturating_sub(now_queued.saturating_sub(queued)));
        gaps.cpu = gaps.cpu.max(now_cpu.saturating_sub(cpu));
        (wall, queued, cpu) = (now_wall, now_queued, now_cpu);
    }
    gaps
}

#[tokio::test(flavor = "current_thread")]
async fn confirming_a_switch_does_not_block_the_runtime() {
    let Some(nginx) = common::nginx() else { return };
    let router = common::router(&nginx);
    let _crowd = Crowd::start();
    // nginx neither connects to these for `nginx -t` nor for the reload.
    let blue = Endpoint::new("127.0.0.1", 18081).unwrap();
    let green = Endpoint::new("127.0.0.1", 18082).unwrap();
    router.apply(&Routes::only(Slot::Blue, blue.clone())).await.unwrap();

    for (i, to) in [(Slot::Green, green), (Slot::Blue, blue)].into_iter().enumerate() {
        let stop = Arc::new(AtomicBool::new(false));
        let ticks = tokio::spawn(ticker(Arc::clone(&stop)));
        tokio::task::yield_now().await;
        let started = Instant::now();
        router.apply(&Routes::only(to.0, to.1)).await.unwrap();
        let took = started.elapsed();
        stop.store(true, Ordering::SeqCst);
        let gaps = ticks.await.unwrap();
        eprintln!("switch {i}: apply took {took:?}; ticker: {gaps:?}");
        // The confirmation waited out the old workers (~100 ms): long enough to be measured.
        assert!(took >= Duration::from_millis(80), "apply returned after {took:?}");
        assert!(
            gaps.held < MAX_GAP,
            "the runtime stalled for {:?} (waits for a CPU not counted) while apply took {took:?}",
            gaps.held
        );
        assert!(
            gaps.cpu < MAX_CPU_GAP,
            "the runtime's thread worked {:?} without serving the ticker (blocking work on the runtime)",
            gaps.cpu
        );
        assert!(gaps.ticks >= 10, "the ticker hardly ran: {gaps:?} in {took:?}");
    }
}
