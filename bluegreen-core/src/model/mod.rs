//! The values a deployment is made of. Every constructor validates, because these values end up
//! inside proxy configuration files, container labels and file names.

mod app;
mod endpoint;
mod endpoints;
pub mod field;
mod host;
mod release;
mod slot;
mod snapshot;
mod split;
mod time;
mod validate;

pub use app::AppName;
pub use endpoint::{Endpoint, Scheme};
pub use endpoints::Endpoints;
pub use release::Release;
pub use slot::Slot;
pub(crate) use snapshot::lower_hex;
pub use snapshot::Snapshot;
pub use split::TrafficSplit;
pub use time::Timestamp;
pub use validate::check_chars;
