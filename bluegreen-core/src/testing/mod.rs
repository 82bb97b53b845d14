//! STUB — in-memory backends, fault injection and conformance suites.
use std::sync::Arc;

use async_trait::async_trait;

use crate::probe::{HealthProbe, ProbeOutcome, ProbeTarget};

/// A probe that answers from a script.
#[derive(Debug)]
pub struct ScriptedProbe;

impl ScriptedProbe {
    /// Always healthy.
    pub fn always_healthy() -> Arc<ScriptedProbe> {
        Arc::new(ScriptedProbe)
    }
}

#[async_trait]
impl HealthProbe for ScriptedProbe {
    fn describe(&self) -> String {
        "scripted".into()
    }
    async fn check(&self, _: &ProbeTarget) -> ProbeOutcome {
        ProbeOutcome::Healthy
    }
}

/// In-memory router.
#[derive(Debug)]
pub struct InMemoryRouter;
/// In-memory environment.
#[derive(Debug)]
pub struct InMemoryEnvironment;
