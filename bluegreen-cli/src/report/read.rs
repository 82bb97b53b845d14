//! The entries of one deployment, from the application's journal.

use bluegreen::journal::{Entry, Journal, Record};
use bluegreen::{Error, Result};

/// How many entries are read first; the window grows fourfold until the deployment's first
/// entry is in it.
const FIRST_WINDOW: usize = 1024;

/// Every entry of deployment `id` (default: the latest deployment), oldest first.
///
/// # Errors
/// [`Error::NotFound`] naming `id` when the journal holds no entry of it (or, without `id`, no
/// deployment at all); the journal's own errors.
pub async fn entries(journal: &dyn Journal, id: Option<&str>) -> Result<Vec<Entry>> {
    let mut window = FIRST_WINDOW;
    loop {
        let all = journal.tail(window).await?;
        let whole = all.len() < window;
        let wanted = match id {
            Some(id) => id.to_owned(),
            None => match all.last() {
                Some(last) => last.deployment.id().to_owned(),
                None => break,
            },
        };
        let mine: Vec<Entry> = all.into_iter().filter(|e| e.deployment.id() == wanted).collect();
        let complete = mine.first().is_some_and(|e| matches!(e.record, Record::Started));
        if complete || (whole && !mine.is_empty()) {
            return Ok(mine);
        }
        if whole {
            break;
        }
        window = window.saturating_mul(4);
    }
    Err(Error::NotFound {
        what: "deployment",
        name: id.unwrap_or("(any: the journal is empty)").to_owned(),
    })
}
