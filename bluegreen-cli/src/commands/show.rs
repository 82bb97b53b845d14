//! How a finished operation is reported, shared by the commands that run one.

use bluegreen::{Answer, Report};

use super::Context;

/// Whether a report stops at a gate waiting for a human (not the warm window after promotion).
pub fn waits_for_approval(report: &Report) -> bool {
    report.deployment.parked().is_some() && !report.deployment.promoted()
}

/// One line saying where the deployment stands (and, for a human, the timeline before it).
pub fn report(ctx: &Context, report: &Report, timeline: bool) {
    if ctx.out.json {
        ctx.out.document(report);
        return;
    }
    let d = &report.deployment;
    if timeline {
        ctx.out.line(report.to_string().trim_end());
    }
    let took = crate::output::human(report.took);
    if waits_for_approval(report) {
        ctx.out.line(format!(
            "parked: {} {} in {} waits at {} ({}% of traffic){}; approve with `bluegreen promote`, or `bluegreen abort`",
            d.id(),
            d.release(),
            d.target(),
            d.phase(),
            d.weight(),
            d.parked()
                .and_then(|p| p.until)
                .map(|u| format!(", rolled back if not approved by {u}"))
                .unwrap_or_default()
        ));
    } else if d.promoted() {
        let warm = if d.parked().is_some() {
            format!(
                "; the previous slot stays warm for {} (`bluegreen rollback` is instant)",
                crate::output::human(d.retirement().rollback_window)
            )
        } else {
            String::new()
        };
        ctx.out
            .line(format!("live: {} in {} ({took}){warm}", d.release(), d.target()));
    } else {
        ctx.out
            .line(format!("{}: {} {} ({took})", d.phase(), d.id(), d.release()));
    }
}

/// The answer to a command sent to a deployment.
pub fn answer(ctx: &Context, answer: &Answer, what: &str) {
    match answer {
        Answer::Ran(run) => report(ctx, run, true),
        Answer::Accepted { deployment, by_pid } => {
            if ctx.out.json {
                ctx.out
                    .document(&serde_json::json!({ "accepted": what, "deployment": deployment, "by_pid": by_pid }));
            } else {
                ctx.out.line(format!(
                    "{what} accepted: deployment {deployment} is carried on by pid {by_pid}"
                ));
            }
        }
        other => {
            if ctx.out.json {
                ctx.out.document(&serde_json::json!({ "answer": format!("{other:?}") }));
            } else {
                ctx.out.line(format!("{what}: {other:?}"));
            }
        }
    }
}
