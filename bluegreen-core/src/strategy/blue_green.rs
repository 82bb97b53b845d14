use std::time::Duration;

use super::{Decision, Pause, Progress, Strategy};
use crate::probe::Analysis;

/// When a blue-green deployment moves traffic once the new slot is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Promotion {
    /// At once.
    #[default]
    Auto,
    /// After a delay (which [`Deployer::promote`](crate::Deployer::promote) may cut short).
    AfterDelay(Duration),
    /// When someone calls [`Deployer::promote`](crate::Deployer::promote).
    Manual,
}

/// Blue-green: the new slot gets all traffic at once, once healthy (and checked, and approved).
///
/// Steps: pre-promotion analysis (optional) → wait for promotion (per [`Promotion`]) → shift 100 →
/// post-promotion analysis (optional; a failure moves traffic back while the old slot is warm) →
/// complete (the deployer then keeps the old slot warm for its rollback window, drains and stops it).
#[derive(Debug, Clone, Default)]
pub struct BlueGreen {
    /// When to promote.
    pub promotion: Promotion,
    /// Checks of the new slot before it gets traffic, beyond its health policy.
    pub pre_promotion: Option<Analysis>,
    /// Checks of the new slot after it gets traffic, over a window.
    pub post_promotion: Option<Analysis>,
}

impl BlueGreen {
    /// Automatic promotion, no analyses, default retirement.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets when to promote.
    pub fn promotion(mut self, promotion: Promotion) -> Self {
        self.promotion = promotion;
        self
    }

    /// Sets the pre-promotion analysis.
    pub fn pre_promotion(mut self, analysis: Analysis) -> Self {
        self.pre_promotion = Some(analysis);
        self
    }

    /// Sets the post-promotion analysis.
    pub fn post_promotion(mut self, analysis: Analysis) -> Self {
        self.post_promotion = Some(analysis);
        self
    }

    fn steps(&self) -> Vec<Decision> {
        let mut steps = Vec::with_capacity(4);
        steps.extend(self.pre_promotion.clone().map(Decision::Analyse));
        match self.promotion {
            Promotion::Auto => {}
            Promotion::AfterDelay(duration) => steps.push(Decision::Pause(Pause::Elapsed { duration })),
            Promotion::Manual => steps.push(Decision::Pause(Pause::Approved)),
        }
        steps.push(Decision::Shift(100));
        steps.extend(self.post_promotion.clone().map(Decision::Analyse));
        steps
    }
}

impl Strategy for BlueGreen {
    fn name(&self) -> &str {
        "blue-green"
    }

    fn needs_weighted_split(&self) -> bool {
        false
    }

    fn decide(&self, progress: &Progress) -> Decision {
        self.steps().get(progress.step).cloned().unwrap_or(Decision::Complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScriptedProbe;

    fn walk(strategy: &BlueGreen) -> Vec<String> {
        let mut out = Vec::new();
        let mut weight = 0;
        for step in 0.. {
            let d = strategy.decide(&Progress::new(step, weight, true));
            if let Decision::Shift(w) = d {
                weight = w;
            }
            out.push(match d {
                Decision::Shift(w) => format!("shift {w}"),
                Decision::Pause(Pause::Approved) => "await approval".into(),
                Decision::Pause(Pause::Elapsed { duration }) => {
                    format!("pause {}ms", duration.as_millis())
                }
                Decision::Analyse(_) => "analyse".into(),
                Decision::Complete => {
                    out.push("complete".into());
                    break;
                }
            });
        }
        out
    }

    #[test]
    fn auto_promotion_shifts_then_completes() {
        assert_eq!(walk(&BlueGreen::new()), ["shift 100", "complete"]);
    }

    #[test]
    fn every_option_in_order() {
        let probe = ScriptedProbe::always_healthy();
        let strategy = BlueGreen::new()
            .promotion(Promotion::Manual)
            .pre_promotion(Analysis::new(probe.clone()))
            .post_promotion(Analysis::new(probe));
        assert_eq!(
            walk(&strategy),
            ["analyse", "await approval", "shift 100", "analyse", "complete"]
        );
        let delayed = BlueGreen::new().promotion(Promotion::AfterDelay(Duration::from_millis(250)));
        assert_eq!(walk(&delayed), ["pause 250ms", "shift 100", "complete"]);
    }

    #[test]
    fn is_deterministic() {
        let s = BlueGreen::new().promotion(Promotion::Manual);
        for step in 0..5 {
            let p = Progress::new(step, 0, true);
            assert_eq!(format!("{:?}", s.decide(&p)), format!("{:?}", s.decide(&p)));
        }
    }
}
