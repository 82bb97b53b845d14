//! [`ProbeContext`]: what a probe knows about the deployment it checks for, beyond an address.

use serde::{Deserialize, Serialize};

use crate::machine::Deployment;
use crate::model::{AppName, Release, Timestamp};

/// The deployment a check is made for: what a probe needs to build a query about the slot's
/// traffic (a PromQL selector on the app and release, a window since the slot took traffic).
///
/// The engine fills every field it knows for every probe it runs ([`ProbeContext::of`]); outside
/// a deployment (a [`ProbeTarget::new`](super::ProbeTarget::new) of your own) it is empty, and a
/// probe that needs a missing field reports a
/// [`ProviderError`](super::ProbeOutcome::ProviderError) naming it.
///
/// ```
/// use bluegreen_core::{probe::ProbeContext, AppName, Release};
///
/// let context = ProbeContext::new("shop-1-2-3", AppName::new("shop")?, Release::new("v2")?).weight(10);
/// assert_eq!(context.weight, 10);
/// # Ok::<(), bluegreen_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProbeContext {
    /// The deployment's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppName>,
    /// The release in the checked slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    /// When the checked slot first took traffic in this deployment (the router confirmed a
    /// weight above 0); `None` before it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_since: Option<Timestamp>,
    /// The checked slot's share of traffic now, in percent.
    #[serde(default)]
    pub weight: u8,
}

impl ProbeContext {
    /// The context of deployment `deployment` of `release` of `app`, before any traffic.
    pub fn new(deployment: impl Into<String>, app: AppName, release: Release) -> Self {
        ProbeContext {
            deployment: Some(deployment.into()),
            app: Some(app),
            release: Some(release),
            traffic_since: None,
            weight: 0,
        }
    }

    /// Sets when the slot first took traffic.
    pub fn traffic_since(mut self, since: Option<Timestamp>) -> Self {
        self.traffic_since = since;
        self
    }

    /// Sets the slot's share of traffic, in percent.
    pub fn weight(mut self, weight: u8) -> Self {
        self.weight = weight;
        self
    }

    /// The context of the new slot of `deployment`, as it stands: its id, app, release, when its
    /// slot took traffic and its weight. Taken from the deployment itself, so it is the same
    /// after a resume.
    pub fn of(deployment: &Deployment) -> Self {
        ProbeContext::new(deployment.id(), deployment.app().clone(), deployment.release().clone())
            .traffic_since(deployment.traffic_since())
            .weight(deployment.weight())
    }
}
