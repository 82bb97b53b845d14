//! Printing what a deployment did, as it happened.

use bluegreen_core::{Event, EventKind};
use tokio::sync::broadcast::Receiver;

/// Prints the events received so far, one line per phase: when it started, which it was, how
/// long it took, and what it found; then how many health checks ran.
pub fn print(events: &mut Receiver<Event>) {
    let mut checks = 0;
    while let Ok(event) = events.try_recv() {
        match event.kind {
            EventKind::Started { target, previous, .. } => {
                let previous = previous.map_or("nothing".to_string(), |p| p.to_string());
                println!("   into {target}, replacing {previous}");
            }
            EventKind::PhaseChanged { from, took, detail, .. } => println!(
                "   {:>8.1} ms  {:<22} {:>8.1} ms  {detail}",
                event.elapsed.saturating_sub(took).as_secs_f64() * 1000.0,
                from.to_string(),
                took.as_secs_f64() * 1000.0,
            ),
            EventKind::Check(_) => checks += 1,
            EventKind::Note(note) => println!("   note: {note}"),
            // Kinds added in later versions (the enum is non-exhaustive).
            _ => {}
        }
    }
    println!("   ({checks} health checks)");
}
