//! `[[webhook]]`: where deployments' events are POSTed (see `bluegreen::webhook`).

use std::time::Duration;

use bluegreen::webhook::Webhook;
use bluegreen::{Error, Result};
use serde::Deserialize;

/// One `[[webhook]]` table. The secret is never in the file: `secret_env` names the variable
/// that holds it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST (`http` or `https`).
    pub url: String,
    /// The environment variable holding the signing secret (`X-Bluegreen-Signature-256`).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Event names to send (default: all but `check`).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// One attempt's bound (default 5 s).
    #[serde(default, deserialize_with = "timeout")]
    pub timeout: Option<Duration>,
    /// Attempts after the first on a connection error, a timeout, 408, 429 or 5xx (default 3).
    #[serde(default)]
    pub retries: Option<u32>,
}

fn timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    bluegreen::model::field::duration(d, "timeout").map(Some)
}

impl WebhookConfig {
    /// The webhook without its secret: what the file alone can be checked for.
    ///
    /// # Errors
    /// The library's refusal, naming the value (a URL, an event name, a timeout, retries).
    pub fn unsigned(&self) -> Result<Webhook> {
        let mut hook = Webhook::new(&self.url)?;
        if let Some(events) = &self.events {
            hook = hook.events(events.iter().map(String::as_str))?;
        }
        if let Some(timeout) = self.timeout {
            hook = hook.timeout(timeout)?;
        }
        if let Some(retries) = self.retries {
            hook = hook.retries(retries)?;
        }
        Ok(hook)
    }

    /// The webhook, signed with the secret read from `secret_env`.
    ///
    /// # Errors
    /// What [`unsigned`](Self::unsigned) refuses, and [`Error::Invalid`] (`"webhook secret_env"`,
    /// naming the variable) when the variable is unset or empty in this process.
    pub fn webhook(&self) -> Result<Webhook> {
        let hook = self.unsigned()?;
        let Some(variable) = &self.secret_env else {
            return Ok(hook);
        };
        match std::env::var(variable) {
            Ok(secret) if !secret.is_empty() => hook.secret(&secret),
            _ => Err(Error::invalid(
                "webhook secret_env",
                variable.as_str(),
                format!(
                    "is not set in the environment (the webhook to {} is signed with it)",
                    hook.origin()
                ),
            )),
        }
    }
}
