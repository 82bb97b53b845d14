//! What one event becomes on the wire: a body with a delivery id, and its signature.

use std::hash::{BuildHasher, RandomState};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::config::Secret;
use crate::engine::Event;
use crate::model::lower_hex;

/// One event, serialized once for every URL and retry.
#[derive(Debug, Clone)]
pub(super) struct Payload {
    /// The delivery id (`X-Bluegreen-Delivery`).
    pub(super) delivery: String,
    /// The event's name (`X-Bluegreen-Event`).
    pub(super) event: &'static str,
    /// The JSON body.
    pub(super) body: Bytes,
}

/// The body's shape.
#[derive(Serialize)]
struct Body<'a> {
    delivery: &'a str,
    event: &'static str,
    data: &'a Event,
}

impl Payload {
    /// `event` with a fresh delivery id.
    ///
    /// # Errors
    /// serde's, if the event cannot be written as JSON (every event can: a test proves it).
    pub(super) fn of(event: &Event) -> serde_json::Result<Self> {
        let delivery = format!("{:016x}{:016x}", random_u64(), random_u64());
        let name = event.kind.name();
        let body = serde_json::to_vec(&Body {
            delivery: &delivery,
            event: name,
            data: event,
        })?;
        Ok(Payload {
            delivery,
            event: name,
            body: Bytes::from(body),
        })
    }
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub(super) fn signature(secret: &Secret, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this never fails; an empty result would only make the
    // receiver refuse the delivery.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&secret.0) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", lower_hex(&mac.finalize().into_bytes()))
}

/// A random number from std's per-process random hash keys (no random-number crate for ids and
/// jitter, which need to differ, not to be unpredictable).
pub(super) fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::Instant::now())
}

/// A random number in `0.0..1.0`, for jitter.
pub(super) fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac_sha256() {
        // RFC 4231, test case 2.
        let secret = Secret(b"Jefe".to_vec());
        assert_eq!(
            signature(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn delivery_ids_differ() {
        assert_ne!(random_u64(), random_u64());
        let unit = random_unit();
        assert!((0.0..1.0).contains(&unit), "{unit}");
    }
}
