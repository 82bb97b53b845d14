//! [`Endpoints`]: every instance of a slot, each at its own endpoint.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Endpoint;
use crate::error::{Error, Result};

/// Where a slot serves: one endpoint per instance (replica), at least one, none twice.
///
/// A slot with one instance has one endpoint; a slot running three replicas has three, and a
/// router sends the slot's share of traffic across all of them. What a proxy serves is a set, so
/// the endpoints are kept in one canonical order (by host, then port, then scheme): two
/// `Endpoints` naming the same instances are equal however they were listed, and configs rendered
/// from them are stable.
///
/// Serialised as a list of endpoints; read from a list or from a single endpoint object (journals
/// and files written when a slot had exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "Vec<Endpoint>")]
pub struct Endpoints(Vec<Endpoint>);

impl<'de> Deserialize<'de> for Endpoints {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(EndpointsVisitor)
    }
}

/// A list, or one endpoint's map: each read by `Endpoint`'s own validation, so a bad host is
/// refused with its own message.
struct EndpointsVisitor;

impl<'de> serde::de::Visitor<'de> for EndpointsVisitor {
    type Value = Endpoints;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of endpoints or one endpoint")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> std::result::Result<Endpoints, A::Error> {
        let list = Vec::<Endpoint>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Endpoints::new(list).map_err(serde::de::Error::custom)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> std::result::Result<Endpoints, A::Error> {
        Endpoint::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Endpoints::one)
    }
}

impl From<Endpoints> for Vec<Endpoint> {
    fn from(endpoints: Endpoints) -> Self {
        endpoints.0
    }
}

impl From<Endpoint> for Endpoints {
    fn from(endpoint: Endpoint) -> Self {
        Endpoints::one(endpoint)
    }
}

impl Endpoints {
    /// The endpoints of a slot's instances, in any order (kept in the canonical one).
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"endpoints"`) when the list is empty, or names the same endpoint twice
    /// (two instances cannot serve at one address; a proxy would count it twice).
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Result<Self> {
        let mut list: Vec<Endpoint> = endpoints.into_iter().collect();
        list.sort_by(|a, b| (a.host(), a.port(), a.scheme().as_str()).cmp(&(b.host(), b.port(), b.scheme().as_str())));
        if list.is_empty() {
            return Err(Error::invalid(
                "endpoints",
                "[]",
                "a slot serves at one endpoint at least",
            ));
        }
        for (i, endpoint) in list.iter().enumerate() {
            if list[..i].contains(endpoint) {
                return Err(Error::invalid(
                    "endpoints",
                    endpoint.to_string(),
                    "named twice: each instance of a slot serves at its own endpoint",
                ));
            }
        }
        Ok(Endpoints(list))
    }

    /// A slot with one instance.
    pub fn one(endpoint: Endpoint) -> Self {
        Endpoints(vec![endpoint])
    }

    /// The first endpoint in the canonical order (the only one, for a slot of one instance).
    pub fn first(&self) -> &Endpoint {
        &self.0[0]
    }

    /// Every endpoint, in the canonical order.
    pub fn as_slice(&self) -> &[Endpoint] {
        &self.0
    }

    /// Every endpoint, in the canonical order.
    pub fn iter(&self) -> std::slice::Iter<'_, Endpoint> {
        self.0.iter()
    }

    /// How many instances (at least one).
    #[allow(clippy::len_without_is_empty)] // never empty, by construction
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `endpoint` is one of them.
    pub fn contains(&self, endpoint: &Endpoint) -> bool {
        self.0.contains(endpoint)
    }

    /// Whether both name the same endpoints (what a proxy serves is a set; with the canonical
    /// order this is `==`).
    pub fn same_set(&self, other: &Endpoints) -> bool {
        self == other
    }
}

impl<'a> IntoIterator for &'a Endpoints {
    type Item = &'a Endpoint;
    type IntoIter = std::slice::Iter<'a, Endpoint>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Endpoints {
    /// `http://10.0.0.1:80`, or `http://10.0.0.1:80, http://10.0.0.2:80` for several.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, endpoint) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{endpoint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> Endpoint {
        Endpoint::new("127.0.0.1", port).unwrap()
    }

    #[test]
    fn refuses_an_empty_list_and_a_duplicate_naming_it() {
        assert!(Endpoints::new([]).unwrap_err().to_string().contains("endpoints"));
        let err = Endpoints::new([at(1), at(2), at(1)]).unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:1") && err.contains("twice"), "{err}");
    }

    #[test]
    fn reads_a_single_endpoint_or_a_list_and_writes_a_list() {
        let one: Endpoints = serde_json::from_str(r#"{"host":"127.0.0.1","port":8080}"#).unwrap();
        assert_eq!(one, Endpoints::one(Endpoint::new("127.0.0.1", 8080).unwrap()));
        let json = serde_json::to_string(&Endpoints::new([at(1), at(2)]).unwrap()).unwrap();
        assert!(json.starts_with('['), "{json}");
        let back: Endpoints = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 2);
        assert!(serde_json::from_str::<Endpoints>("[]").is_err());
        let dup = r#"[{"host":"127.0.0.1","port":1},{"host":"127.0.0.1","port":1}]"#;
        assert!(serde_json::from_str::<Endpoints>(dup).is_err());
        let bad = serde_json::from_str::<Endpoints>(r#"{"host":"127.1","port":1}"#).unwrap_err();
        assert!(bad.to_string().contains("127.1"), "the endpoint's own message: {bad}");
        let bad = serde_json::from_str::<Endpoints>(r#"[{"host":"127.1","port":1}]"#).unwrap_err();
        assert!(bad.to_string().contains("127.1"), "the endpoint's own message: {bad}");
    }

    #[test]
    fn keeps_one_canonical_order_so_the_same_instances_compare_equal() {
        let a = Endpoints::new([at(3), at(1), at(2)]).unwrap();
        assert_eq!(a, Endpoints::new([at(1), at(2), at(3)]).unwrap());
        assert_eq!(a.first(), &at(1));
    }

    #[test]
    fn displays_every_endpoint_and_compares_as_a_set() {
        let a = Endpoints::new([at(1), at(2)]).unwrap();
        assert_eq!(a.to_string(), format!("{}, {}", at(1), at(2)));
        assert!(a.same_set(&Endpoints::new([at(2), at(1)]).unwrap()));
        assert!(!a.same_set(&Endpoints::one(at(1))));
    }
}
