use std::time::Duration;

use super::{Decision, Pause, Progress, Strategy};
use crate::error::{Error, Result};
use crate::probe::Analysis;

/// One step of a canary.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CanaryStep {
    /// Give the new slot this share of traffic (1..=100).
    SetWeight(u8),
    /// Wait this long ([`Deployer::promote`](crate::Deployer::promote) cuts it short).
    Pause(Duration),
    /// Wait for [`Deployer::promote`](crate::Deployer::promote).
    PauseUntilApproved,
    /// Check the new slot; roll back when its failure limit is exceeded.
    Analyse(Analysis),
}

/// Canary: traffic moves to the new slot in steps, with pauses and analysis between them.
///
/// After the last step the new slot gets 100 % (if the steps did not already give it all), then the
/// old slot is retired. On a first deploy there is nothing to share traffic with: the canary shifts
/// straight to 100.
///
/// Needs a router with weighted splits; the deployer refuses it up front otherwise.
#[derive(Debug, Clone)]
pub struct Canary {
    steps: Vec<CanaryStep>,
}

impl Canary {
    /// A canary of `steps`; weights must be 1..=100.
    pub fn new(steps: Vec<CanaryStep>) -> Result<Self> {
        if steps.is_empty() {
            return Err(Error::invalid("canary steps", "[]", "a canary needs at least one step"));
        }
        for step in &steps {
            if let CanaryStep::SetWeight(w) = step {
                if *w == 0 || *w > 100 {
                    return Err(Error::invalid(
                        "canary weight",
                        w.to_string(),
                        "must be between 1 and 100",
                    ));
                }
            }
        }
        Ok(Canary { steps })
    }

    /// The steps.
    pub fn steps(&self) -> &[CanaryStep] {
        &self.steps
    }
}

impl Strategy for Canary {
    fn name(&self) -> &str {
        "canary"
    }

    fn needs_weighted_split(&self) -> bool {
        true
    }

    fn decide(&self, progress: &Progress) -> Decision {
        if !progress.has_previous {
            return if progress.weight < 100 {
                Decision::Shift(100)
            } else {
                Decision::Complete
            };
        }
        match self.steps.get(progress.step) {
            Some(CanaryStep::SetWeight(w)) => Decision::Shift(*w),
            Some(CanaryStep::Pause(duration)) => Decision::Pause(Pause::Elapsed { duration: *duration }),
            Some(CanaryStep::PauseUntilApproved) => Decision::Pause(Pause::Approved),
            Some(CanaryStep::Analyse(analysis)) => Decision::Analyse(analysis.clone()),
            None if progress.weight < 100 => Decision::Shift(100),
            None => Decision::Complete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScriptedProbe;

    fn walk(canary: &Canary, has_previous: bool) -> Vec<String> {
        let mut out = Vec::new();
        let mut weight = 0;
        for step in 0..20 {
            match canary.decide(&Progress::new(step, weight, has_previous)) {
                Decision::Shift(w) => {
                    weight = w;
                    out.push(format!("{w}%"));
                }
                Decision::Pause(Pause::Approved) => out.push("approval".into()),
                Decision::Pause(Pause::Elapsed { duration }) => out.push(format!("{}s", duration.as_secs())),
                Decision::Analyse(_) => out.push("analyse".into()),
                Decision::Complete => {
                    out.push("complete".into());
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn walks_its_steps_then_promotes() {
        let c = Canary::new(vec![
            CanaryStep::SetWeight(10),
            CanaryStep::Pause(Duration::from_secs(30)),
            CanaryStep::Analyse(Analysis::new(ScriptedProbe::always_healthy())),
            CanaryStep::SetWeight(50),
            CanaryStep::PauseUntilApproved,
        ])
        .unwrap();
        assert_eq!(
            walk(&c, true),
            ["10%", "30s", "analyse", "50%", "approval", "100%", "complete"]
        );
    }

    #[test]
    fn does_not_shift_again_when_the_steps_reach_100() {
        let c = Canary::new(vec![CanaryStep::SetWeight(50), CanaryStep::SetWeight(100)]).unwrap();
        assert_eq!(walk(&c, true), ["50%", "100%", "complete"]);
    }

    #[test]
    fn a_first_deploy_goes_straight_to_100() {
        let c = Canary::new(vec![CanaryStep::SetWeight(10), CanaryStep::PauseUntilApproved]).unwrap();
        assert_eq!(walk(&c, false), ["100%", "complete"]);
    }

    #[test]
    fn refuses_bad_steps() {
        assert!(Canary::new(vec![]).is_err());
        let err = Canary::new(vec![CanaryStep::SetWeight(0)]).unwrap_err().to_string();
        assert!(err.contains("canary weight") && err.contains("\"0\""), "{err}");
        assert!(Canary::new(vec![CanaryStep::SetWeight(101)]).is_err());
    }
}
