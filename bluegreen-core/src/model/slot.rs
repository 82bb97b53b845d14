use std::fmt;

use serde::{Deserialize, Serialize};

/// One of the two places a release can run. Traffic is on one, the other receives the next release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// The blue slot.
    Blue,
    /// The green slot.
    Green,
}

impl Slot {
    /// Both slots, blue first.
    pub const BOTH: [Slot; 2] = [Slot::Blue, Slot::Green];

    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    /// The lowercase name used in labels, file names and proxy configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Slot {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "blue" => Ok(Slot::Blue),
            "green" => Ok(Slot::Green),
            other => Err(crate::Error::invalid("slot", other, "expected \"blue\" or \"green\"")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_is_an_involution() {
        for slot in Slot::BOTH {
            assert_ne!(slot.other(), slot);
            assert_eq!(slot.other().other(), slot);
            assert_eq!(slot.as_str().parse::<Slot>().unwrap(), slot);
        }
        assert!("Blue ".parse::<Slot>().is_err());
    }
}
