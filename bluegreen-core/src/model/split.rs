use std::fmt;

use serde::{Deserialize, Serialize};

use super::Slot;
use crate::error::{Error, Result};

/// How traffic is shared between the two slots, in percent. The weights always sum to 100.
///
/// 100/0 is blue-green; 90/10 is a canary step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawSplit")]
pub struct TrafficSplit {
    blue: u8,
    green: u8,
}

#[derive(Deserialize)]
struct RawSplit {
    blue: u8,
    green: u8,
}

impl TryFrom<RawSplit> for TrafficSplit {
    type Error = Error;
    fn try_from(raw: RawSplit) -> Result<Self> {
        TrafficSplit::new(raw.blue, raw.green)
    }
}

impl TrafficSplit {
    /// A split of `blue` and `green` percent; they must sum to 100.
    pub fn new(blue: u8, green: u8) -> Result<Self> {
        if u16::from(blue) + u16::from(green) != 100 {
            return Err(Error::invalid(
                "traffic split",
                format!("blue={blue} green={green}"),
                format!("weights sum to {}, not 100", u16::from(blue) + u16::from(green)),
            ));
        }
        Ok(TrafficSplit { blue, green })
    }

    /// All traffic on `slot`.
    pub fn all(slot: Slot) -> Self {
        match slot {
            Slot::Blue => TrafficSplit { blue: 100, green: 0 },
            Slot::Green => TrafficSplit { blue: 0, green: 100 },
        }
    }

    /// `weight` percent on `slot`, the rest on the other slot.
    pub fn toward(slot: Slot, weight: u8) -> Result<Self> {
        if weight > 100 {
            return Err(Error::invalid(
                "weight",
                weight.to_string(),
                "must be between 0 and 100",
            ));
        }
        Ok(match slot {
            Slot::Blue => TrafficSplit {
                blue: weight,
                green: 100 - weight,
            },
            Slot::Green => TrafficSplit {
                blue: 100 - weight,
                green: weight,
            },
        })
    }

    /// The weight of `slot`, in percent.
    pub fn weight(&self, slot: Slot) -> u8 {
        match slot {
            Slot::Blue => self.blue,
            Slot::Green => self.green,
        }
    }

    /// The slot with all traffic, if one has all of it.
    pub fn sole(&self) -> Option<Slot> {
        Slot::BOTH.into_iter().find(|s| self.weight(*s) == 100)
    }

    /// The slot with most traffic; `None` at 50/50.
    pub fn major(&self) -> Option<Slot> {
        match self.blue.cmp(&self.green) {
            std::cmp::Ordering::Greater => Some(Slot::Blue),
            std::cmp::Ordering::Less => Some(Slot::Green),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// The weights reduced to lowest terms (90/10 → 9/1, 100/0 → 1/0), for proxies that take
    /// relative weights.
    pub fn reduced(&self) -> (u8, u8) {
        let g = gcd(self.blue, self.green);
        (self.blue / g, self.green / g)
    }
}

fn gcd(a: u8, b: u8) -> u8 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl fmt::Display for TrafficSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blue {}% / green {}%", self.blue, self.green)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_must_sum_to_100() {
        let err = TrafficSplit::new(90, 20).unwrap_err().to_string();
        assert!(err.contains("blue=90 green=20") && err.contains("110"), "{err}");
        assert!(TrafficSplit::toward(Slot::Blue, 101).is_err());
        assert!(serde_json::from_str::<TrafficSplit>(r#"{"blue":50,"green":51}"#).is_err());
    }

    #[test]
    fn reduces_to_lowest_terms() {
        assert_eq!(TrafficSplit::new(90, 10).unwrap().reduced(), (9, 1));
        assert_eq!(TrafficSplit::new(100, 0).unwrap().reduced(), (1, 0));
        assert_eq!(TrafficSplit::new(0, 100).unwrap().reduced(), (0, 1));
        assert_eq!(TrafficSplit::new(75, 25).unwrap().reduced(), (3, 1));
        assert_eq!(TrafficSplit::new(33, 67).unwrap().reduced(), (33, 67));
    }

    #[test]
    fn sole_and_major() {
        assert_eq!(TrafficSplit::all(Slot::Green).sole(), Some(Slot::Green));
        assert_eq!(TrafficSplit::new(60, 40).unwrap().sole(), None);
        assert_eq!(TrafficSplit::new(60, 40).unwrap().major(), Some(Slot::Blue));
        assert_eq!(TrafficSplit::new(50, 50).unwrap().major(), None);
    }
}
