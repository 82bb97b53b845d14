//! [`WithApp`]: a backend's config read from a table that does not repeat the application's name.
//!
//! `DockerConfig` and `TraefikConfig` carry an `app` key; in `bluegreen.toml` the name is written
//! once, at the top. [`WithApp<T>`] reads the table as `T` would, with one more entry, `app`,
//! before the table's own (a table that writes `app` itself is refused by `T` as a duplicate).
//! Every real key is read straight from the TOML deserializer, so an error inside the table keeps
//! its line, column and key path.
//!
//! The name is set for the duration of one parse by [`scope`] (the loader's second pass, after a
//! first pass read `app`).

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, StrDeserializer};
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

thread_local! {
    static APP: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `parse` with `app` as the name [`WithApp`] injects.
pub fn scope<R>(app: &str, parse: impl FnOnce() -> R) -> R {
    APP.with(|slot| *slot.borrow_mut() = Some(app.to_owned()));
    let result = parse();
    APP.with(|slot| *slot.borrow_mut() = None);
    result
}

/// `T`, read from a table that gets `app` from the top of the file.
#[derive(Debug, Clone)]
pub struct WithApp<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for WithApp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let app = APP.with(|slot| slot.borrow().clone()).unwrap_or_default();
        d.deserialize_map(TableVisitor {
            app,
            target: PhantomData,
        })
    }
}

struct TableVisitor<T> {
    app: String,
    target: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for TableVisitor<T> {
    type Value = WithApp<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let injected = Injected {
            inner: map,
            app: Some(self.app),
            giving_app: false,
        };
        T::deserialize(MapAccessDeserializer::new(injected)).map(WithApp)
    }
}

/// `app` first, then the table's own entries.
struct Injected<A> {
    inner: A,
    /// `Some` until its key is handed out; its value follows.
    app: Option<String>,
    giving_app: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Injected<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        if self.app.is_some() && !self.giving_app {
            self.giving_app = true;
            return seed.deserialize(StrDeserializer::<A::Error>::new("app")).map(Some);
        }
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        if self.giving_app {
            self.giving_app = false;
            let app = self.app.take().unwrap_or_default();
            return seed.deserialize(StrDeserializer::<A::Error>::new(&app));
        }
        self.inner.next_value_seed(seed)
    }
}
