use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock instant, written as RFC 3339 with milliseconds in journals and lock files
/// (`2026-11-22T02:01:54.123Z`), so an audit log reads without tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(SystemTime);

impl Timestamp {
    /// Now, truncated to the millisecond, so a timestamp reads back equal from a journal.
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let millis = Duration::from_millis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX));
        Timestamp(SystemTime::UNIX_EPOCH + millis)
    }

    /// The instant as a [`SystemTime`].
    pub fn system_time(self) -> SystemTime {
        self.0
    }

    /// Time since this instant (zero if it is in the future).
    pub fn elapsed(self) -> Duration {
        self.0.elapsed().unwrap_or_default()
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Timestamp(t)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text)
            .map(Timestamp)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json_at_millisecond_precision() {
        let t = Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123));
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.ends_with(".123Z\""), "{json}");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        let now = Timestamp::now();
        assert_eq!(
            serde_json::from_str::<Timestamp>(&serde_json::to_string(&now).unwrap()).unwrap(),
            now
        );
    }
}
