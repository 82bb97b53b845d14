//! [`PrometheusAnalysis`]: a PromQL query about the checked slot, run against a Prometheus HTTP
//! API and compared with a [`Threshold`].

mod response;
mod template;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::check::format_duration;
use super::http::{build_client, describe_failure};
use super::{HealthProbe, ProbeOutcome, ProbeScope, ProbeTarget};
use crate::error::{Error, Result};
use response::Sample;
use template::Template;

pub use template::QUERY_PLACEHOLDERS;

/// What a query's value must be for the check to pass.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Threshold {
    /// Passes while every value is at most this (an error rate, a latency).
    AtMost(f64),
    /// Passes while every value is at least this (a success rate, a throughput).
    AtLeast(f64),
}

impl Threshold {
    /// Whether `value` passes. NaN never does.
    pub fn passes(self, value: f64) -> bool {
        match self {
            Threshold::AtMost(max) => value <= max,
            Threshold::AtLeast(min) => value >= min,
        }
    }

    fn bound(self) -> f64 {
        match self {
            Threshold::AtMost(bound) | Threshold::AtLeast(bound) => bound,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::AtMost(max) => write!(f, "≤ {max}"),
            Threshold::AtLeast(min) => write!(f, "≥ {min}"),
        }
    }
}

/// An analysis check that asks Prometheus: runs a PromQL query about the checked slot and
/// compares every value it returns with a [`Threshold`]. It is a [`HealthProbe`], so it plugs
/// into [`Analysis`](super::Analysis) (or a [`HealthPolicy`](super::HealthPolicy)) like any
/// probe, and the analysis's limits decide what its outcomes mean.
///
/// # The query
/// A template: these placeholders are replaced from the [`ProbeTarget`] and its
/// [`ProbeContext`](super::ProbeContext) at every check —
/// `{app}`, `{slot}` (`blue`/`green`), `{release}`, `{deployment}` (the id), escaped for a PromQL
/// string (write them inside double quotes: `version="{release}"`); `{weight}` (the slot's percent of
/// traffic) as a number; `{window}` as a PromQL duration (`"93s"`): the whole seconds since the
/// slot took traffic (rounded up), at least [`min_window`](PrometheusAnalysis::min_window) so
/// that `rate()` sees two samples (before any traffic, the minimum). A placeholder is a name in
/// braces with nothing else (`{app}`); a label matcher such as `{code=~"5.."}` is PromQL, left as
/// it is. Values are escaped for strings, not for regular expressions: after `=~`, a release's
/// `.` matches any character.
///
/// # Outcomes
/// `GET {url}/api/v1/query?query=…`, bounded by [`timeout`](PrometheusAnalysis::timeout).
/// - [`Healthy`](ProbeOutcome::Healthy): the result (a vector, or a scalar) has at least one
///   value and every value passes the threshold.
/// - [`Unhealthy`](ProbeOutcome::Unhealthy): a value past the threshold
///   (`"0.21 > 0.05 for {version="v3"} (query: …)"`), even if other series are missing values.
/// - [`ProviderError`](ProbeOutcome::ProviderError), naming the query and what came back: an
///   empty vector, a NaN or infinite value, Prometheus unreachable or timing out, an HTTP error,
///   `"status": "error"` (a bad query), a result that is not a vector or scalar, a placeholder the
///   target's context cannot fill. None of these ever passes: the analysis's
///   [`inconclusive_limit`](super::Analysis::inconclusive_limit) decides whether it holds the
///   deployment.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use bluegreen_core::probe::{Analysis, PrometheusAnalysis};
///
/// let error_rate = PrometheusAnalysis::new(
///     "http://127.0.0.1:9090",
///     r#"(sum(rate(http_requests_total{app="{app}",version="{release}",code=~"5.."}[{window}])) or vector(0))
///      / sum(rate(http_requests_total{app="{app}",version="{release}"}[{window}]))"#,
/// )?
/// .fails_above(0.05)
/// .min_window(Duration::from_secs(30));
/// let analysis = Analysis::new(Arc::new(error_rate)).count(5).interval(Duration::from_secs(10));
/// assert!(PrometheusAnalysis::new("http://127.0.0.1:9090", "up{job=\"{jbo}\"}").is_err());
/// # Ok::<(), bluegreen_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PrometheusAnalysis {
    url: String,
    template: Template,
    threshold: Threshold,
    min_window: Duration,
    timeout: Duration,
    client: reqwest::Client,
}

impl PrometheusAnalysis {
    /// A check of `query` (a template, see the type's docs) against the Prometheus at `url`
    /// (`http://host:9090`, or with a path prefix), passing while every value is ≤ 0 until
    /// [`fails_above`](Self::fails_above) or [`fails_below`](Self::fails_below) sets the
    /// threshold; a minimum window of 1 minute and a timeout of 1.5 s.
    ///
    /// # Errors
    /// [`Error::Invalid`]: `"prometheus url"` for a URL that is not `http`/`https` with a host,
    /// or has a query, a fragment or credentials (`user:password@`: the URL is named in every
    /// provider error, which the journal, reports and webhooks carry); `"prometheus query"` for an empty query or one with a
    /// placeholder not in [`QUERY_PLACEHOLDERS`] (naming it). [`Error::Backend`] if the HTTP client
    /// cannot be built.
    pub fn new(url: &str, query: impl Into<String>) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|err| Error::invalid("prometheus url", url, err.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::invalid(
                "prometheus url",
                url,
                "must be an http or https URL with a host",
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::invalid("prometheus url", url, "must have no query or fragment"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            let mut shown = parsed.clone();
            let _ = shown.set_username("");
            let _ = shown.set_password(None);
            return Err(Error::invalid(
                "prometheus url",
                shown.as_str(),
                "must carry no credentials: the URL is named in provider errors, which the journal keeps",
            ));
        }
        let template = Template::parse(query.into())?;
        let client = build_client("prometheus", reqwest::Client::builder())?;
        Ok(PrometheusAnalysis {
            url: format!("{}/api/v1/query", parsed.as_str().trim_end_matches('/')),
            template,
            threshold: Threshold::AtMost(0.0),
            min_window: Duration::from_secs(60),
            timeout: Duration::from_millis(1500),
            client,
        })
    }

    /// Passes while every value is at most `max` (`fails_above(0.05)` for an error rate).
    pub fn fails_above(self, max: f64) -> Self {
        self.threshold(Threshold::AtMost(max))
    }

    /// Passes while every value is at least `min` (`fails_below(0.99)` for a success rate).
    pub fn fails_below(self, min: f64) -> Self {
        self.threshold(Threshold::AtLeast(min))
    }

    /// Sets the threshold. A NaN bound makes every check a provider error.
    pub fn threshold(mut self, threshold: Threshold) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets the least `{window}` (default 1 minute; rounded up to whole seconds, at least 1 s):
    /// make it at least twice the scrape interval, so `rate()` over it sees two samples.
    pub fn min_window(mut self, min_window: Duration) -> Self {
        self.min_window = min_window;
        self
    }

    /// Sets the bound on one query, from connecting to the end of the answer (default 1.5 s). Keep
    /// it below the [`Analysis`](super::Analysis)'s own timeout (default 2 s): a slow Prometheus
    /// is then a provider error, whereas a check that overruns the analysis's bound counts as a
    /// failure.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The query this probe would run for `target` now (every placeholder filled).
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"probe context"`) naming a placeholder the target's context has no
    /// value for (a target made without a deployment has no app, release or id).
    pub fn query_for(&self, target: &ProbeTarget) -> Result<String> {
        self.template.render(target, self.min_window)
    }

    fn judge(&self, query: &str, samples: Vec<Sample>) -> ProbeOutcome {
        if samples.is_empty() {
            return ProbeOutcome::ProviderError(format!("query {query:?} returned no series"));
        }
        if let Some(bad) = samples
            .iter()
            .find(|s| s.value.is_finite() && !self.threshold.passes(s.value))
        {
            let relation = match self.threshold {
                Threshold::AtMost(_) => ">",
                Threshold::AtLeast(_) => "<",
            };
            return ProbeOutcome::Unhealthy(format!(
                "{} {relation} {} for {} (query: {query})",
                bad.value,
                self.threshold.bound(),
                bad.labels
            ));
        }
        if let Some(odd) = samples.iter().find(|s| !s.value.is_finite()) {
            return ProbeOutcome::ProviderError(format!(
                "query {query:?} returned {} for {}, not a number to compare",
                odd.value, odd.labels
            ));
        }
        ProbeOutcome::Healthy
    }
}

#[async_trait]
impl HealthProbe for PrometheusAnalysis {
    fn describe(&self) -> String {
        format!("prometheus {} {}", self.template.text(), self.threshold)
    }

    /// [`Slot`](ProbeScope::Slot): the query is about the release (its placeholders name the
    /// app, slot, release and deployment, never an instance), so it runs once per check.
    fn scope(&self) -> ProbeScope {
        ProbeScope::Slot
    }

    /// One instant query, bounded by the probe's timeout. Cancellation-safe.
    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        if self.threshold.bound().is_nan() {
            return ProbeOutcome::ProviderError(format!("threshold of {} is NaN", self.template.text()));
        }
        let query = match self.query_for(target) {
            Ok(query) => query,
            Err(err) => return ProbeOutcome::ProviderError(format!("query {}: {err}", self.template.text())),
        };
        let request = self
            .client
            .get(&self.url)
            .query(&[("query", query.as_str())])
            .timeout(self.timeout);
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                return ProbeOutcome::ProviderError(format!(
                    "query {query:?} at {}: {}",
                    self.url,
                    describe_failure(&err, self.timeout)
                ))
            }
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(err) => {
                return ProbeOutcome::ProviderError(format!(
                    "query {query:?} at {}: reading the answer: {}",
                    self.url,
                    describe_failure(&err, self.timeout)
                ))
            }
        };
        match response::parse(status.as_u16(), &body) {
            Ok(samples) => self.judge(&query, samples),
            Err(what) => ProbeOutcome::ProviderError(format!("query {query:?} at {}: {what}", self.url)),
        }
    }
}

impl fmt::Display for PrometheusAnalysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (window ≥ {}, timeout {})",
            self.describe(),
            format_duration(self.min_window),
            format_duration(self.timeout)
        )
    }
}

#[cfg(test)]
mod tests;
