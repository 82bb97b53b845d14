//! Ending a parked rollback window early, on purpose (a fleet whose every host is switched).

use tracing::instrument;

use super::events::Report;
use super::run::Begin;
use super::Deployer;
use crate::error::Result;
use crate::machine::Phase;

impl Deployer {
    /// Ends the rollback window of a deployment [parked warm](super::DeployerBuilder::park_warm)
    /// now: the old slot is drained and stopped, and the deployment completes. `Ok(None)` when the
    /// journal's last deployment is not parked warm (nothing to end).
    ///
    /// What a new deploy does before it starts, without starting one: a caller that decided no
    /// rollback will be needed (a [fleet](crate::fleet) whose every host is switched) retires the
    /// old release at once rather than waiting for the window to pass.
    ///
    /// # Errors
    /// [`Error::Locked`](crate::Error::Locked) while another deployer holds the lock; as
    /// [`resume`](Self::resume) when draining or stopping the old slot fails.
    ///
    /// # Cancellation
    /// As [`deploy`](Self::deploy): the journal holds where it stopped, and
    /// [`resume`](Self::resume) carries it on.
    #[instrument(skip_all, fields(app = %self.inner.app))]
    pub async fn end_rollback_window(&self) -> Result<Option<Report>> {
        let guard = self.acquire().await?;
        let Some(last) = self.last_entry().await? else {
            return Ok(None);
        };
        if *last.deployment.phase() != Phase::Warm || last.deployment.parked().is_none() {
            return Ok(None);
        }
        self.run(last.deployment, guard, Some(last.seq), Begin::Due)
            .await
            .map(Some)
    }
}
