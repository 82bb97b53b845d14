//! The order a fleet goes in: a canary host, then batches.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a fleet deploys: which host goes first, alone (the canary), then how many hosts switch at
/// once after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FleetPlan {
    /// The host switched first, alone; `None`: the first host.
    pub canary: Option<String>,
    /// How many hosts switch together after the canary (at least 1).
    pub batch_size: usize,
}

impl FleetPlan {
    /// The first host as canary, then batches of `batch_size`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a batch size of 0.
    pub fn new(batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid(
                "fleet batch size",
                "0",
                "a batch holds at least one host",
            ));
        }
        Ok(FleetPlan {
            canary: None,
            batch_size,
        })
    }

    /// Sets the canary host.
    pub fn canary(mut self, host: impl Into<String>) -> Self {
        self.canary = Some(host.into());
        self
    }

    /// The waves of `hosts` (indices into it): the canary alone, then the others in their order,
    /// `batch_size` at a time.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a batch size of 0, or a canary that is not one of `hosts`.
    pub fn waves(&self, hosts: &[String]) -> Result<Vec<Vec<usize>>> {
        if self.batch_size == 0 {
            return Err(Error::invalid(
                "fleet batch size",
                "0",
                "a batch holds at least one host",
            ));
        }
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        let canary = match &self.canary {
            None => 0,
            Some(name) => hosts.iter().position(|h| h == name).ok_or_else(|| {
                Error::invalid(
                    "fleet canary",
                    name.clone(),
                    format!("not a host of the fleet ({})", hosts.join(", ")),
                )
            })?,
        };
        let rest: Vec<usize> = (0..hosts.len()).filter(|&i| i != canary).collect();
        let mut waves = vec![vec![canary]];
        waves.extend(rest.chunks(self.batch_size).map(<[usize]>::to_vec));
        Ok(waves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn canary_first_then_batches() {
        let plan = FleetPlan::new(3).unwrap();
        assert_eq!(plan.waves(&names(6)).unwrap(), vec![vec![0], vec![1, 2, 3], vec![4, 5]]);
        let plan = plan.canary("h2");
        assert_eq!(plan.waves(&names(3)).unwrap(), vec![vec![2], vec![0, 1]]);
        assert_eq!(FleetPlan::new(3).unwrap().waves(&names(1)).unwrap(), vec![vec![0]]);
    }

    #[test]
    fn refuses_a_zero_batch_and_an_unknown_canary() {
        assert!(matches!(FleetPlan::new(0), Err(Error::Invalid { .. })));
        let err = FleetPlan::new(2).unwrap().canary("nope").waves(&names(2)).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
