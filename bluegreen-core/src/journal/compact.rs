//! Compaction of a [`FileJournal`](super::FileJournal): what is kept, and how the file is replaced
//! without losing an entry to a crash or to another process.
//!
//! What is kept is documented on [`Retention`].
//!
//! # Crash safety
//! All under the journal's `flock`: the kept lines are written to `<app>.journal.jsonl.compact.tmp`
//! and the dropped ones to `<app>.journal.1.jsonl.tmp`, both `fsync`ed; the rotated files shift and
//! the dropped lines are renamed into `.1`; then the compacted file is renamed over the journal,
//! and the directory `fsync`ed. A crash before the last rename leaves the journal as it was (and
//! stale temporary files, which the next [`open`](super::FileJournal::open) removes); a crash
//! between the two renames leaves the dropped entries both in the journal and in `.1`, so the
//! next compaction rotates them again: duplicated in the rotated files, never lost.
//!
//! Blocking: everything here runs on the blocking pool, in a `FileJournal`'s `spawn_blocking`
//! tasks (or in `FileJournal::open_with`, documented as blocking).
#![allow(clippy::disallowed_methods, reason = "blocking pool only (see the module docs)")]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::handle::{open_at, sync_dir, State, Step};
use super::skipped::{classify, Line};
use crate::error::{Error, Result};
use crate::machine::{step, Signal};

/// Which entries a compaction keeps.
///
/// Every entry carries a full snapshot of its deployment, so a deployment's latest entry is all
/// that status, history and resume need of it; the entries before it are its audit trail. A
/// compaction keeps, in their order and byte for byte:
/// - the last entry of the journal (so `status` and the next `seq` are unchanged);
/// - every entry of the [`detailed`](Retention::detailed) most recent deployments (their full
///   audit trail);
/// - the latest entry of each of the [`deployments`](Retention::deployments) most recent
///   deployments (what `history` shows);
/// - the latest entry of every unfinished deployment (one that a resume would act on), however
///   old.
///
/// "Recent" orders deployments by their latest entry. Everything else — older entries, and lines
/// that are not entries (torn or foreign, see [`SkippedLine`](super::SkippedLine)) — is moved, byte
/// for byte, to the rotated file `<app>.journal.1.jsonl`; the rotated files before it shift to
/// `.2`, `.3`, … and the oldest beyond [`JournalOptions::rotated_files`](super::JournalOptions) is
/// deleted. The kept entries are a subsequence of the journal, so `seq` still increases strictly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// How many of the most recent deployments keep their latest entry (the history). Default
    /// 1000.
    pub deployments: usize,
    /// How many of the most recent deployments keep every entry (the audit trail). Default 10.
    pub detailed: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            deployments: 1000,
            detailed: 10,
        }
    }
}

impl Retention {
    /// Sets how many of the most recent deployments keep their latest entry.
    pub fn deployments(mut self, deployments: usize) -> Self {
        self.deployments = deployments;
        self
    }

    /// Sets how many of the most recent deployments keep every entry.
    pub fn detailed(mut self, detailed: usize) -> Self {
        self.detailed = detailed;
        self
    }
}

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Entries left in the journal.
    pub kept: usize,
    /// Entries moved to the rotated file.
    pub dropped: usize,
    /// Lines that were not entries (torn or foreign), moved to the rotated file.
    pub skipped: usize,
    /// The journal's size before.
    pub bytes_before: u64,
    /// The journal's size after.
    pub bytes_after: u64,
    /// Where the dropped lines went, if anything was dropped and rotated files are kept.
    pub rotated_to: Option<PathBuf>,
}

/// The files of one journal.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// `<dir>/<app>.journal.jsonl`.
    pub(crate) journal: PathBuf,
    /// `<dir>/<app>.journal`, to which rotated files add `.<n>.jsonl`.
    base: PathBuf,
}

impl Paths {
    pub(crate) fn new(dir: &Path, app: &str) -> Self {
        Paths {
            journal: dir.join(format!("{app}.journal.jsonl")),
            base: dir.join(format!("{app}.journal")),
        }
    }

    /// The `n`th rotated file (1 is the newest).
    pub(crate) fn rotated(&self, n: usize) -> PathBuf {
        with_suffix(&self.base, &format!(".{n}.jsonl"))
    }

    fn compact_tmp(&self) -> PathBuf {
        with_suffix(&self.journal, ".compact.tmp")
    }

    fn rotate_tmp(&self) -> PathBuf {
        with_suffix(&self.rotated(1), ".tmp")
    }

    /// Removes the temporary files a compaction that crashed left behind. The caller holds the
    /// `flock` of the file at the journal's path, so no compaction is under way (see
    /// [`handle`](super::handle)). Returns the files it removed.
    pub(crate) fn remove_stale_temps(&self) -> Step<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for tmp in [self.compact_tmp(), self.rotate_tmp()] {
            match std::fs::remove_file(&tmp) {
                Ok(()) => removed.push(tmp),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(("remove a stale compaction file", e)),
            }
        }
        Ok(removed)
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// One line of the journal, as the first pass found it.
struct LineInfo {
    len: u64,
    /// Index of its deployment, if it is an entry.
    deployment: Option<usize>,
}

/// What the first pass learnt about a deployment.
struct DeploymentInfo {
    /// Index of its latest line.
    last_line: usize,
    /// Whether its latest entry is unfinished (resume would act on it).
    unfinished: bool,
}

/// Compacts the journal whose `flock` the caller holds on `state.file` (the file at
/// `paths.journal`, with no torn tail), keeping `keep` and up to `rotated_files` rotated files.
/// The caller's file is replaced by the compacted one (closing the old one releases its lock).
pub(crate) fn compact_locked(
    state: &mut State,
    paths: &Paths,
    keep: Retention,
    rotated_files: usize,
) -> Result<CompactionReport> {
    let journal_error = |what: &str, e: io::Error| {
        Error::journal(
            paths.journal.display().to_string(),
            format!("compaction: cannot {what}"),
            e,
        )
    };
    let bytes_before = state.file.metadata().map_err(|e| journal_error("stat", e))?.len();
    let (lines, deployments) = scan(&state.file, paths)?;
    let kept = plan(&lines, &deployments, keep);
    let dropped_lines = kept.iter().filter(|k| !**k).count();
    let entries = lines.iter().filter(|l| l.deployment.is_some()).count();
    let kept_entries = kept.iter().filter(|k| **k).count();
    if dropped_lines == 0 {
        return Ok(CompactionReport {
            kept: kept_entries,
            dropped: 0,
            skipped: 0,
            bytes_before,
            bytes_after: bytes_before,
            rotated_to: None,
        });
    }
    let rotate = rotated_files > 0;
    let written = write_temps(&state.file, paths, &lines, &kept, rotate);
    let bytes_after = match written {
        Ok(bytes_after) => bytes_after,
        Err((what, e)) => {
            remove_temps(paths);
            return Err(journal_error(what, e));
        }
    };
    let replaced = replace(paths, rotated_files);
    if let Err((what, e)) = replaced {
        remove_temps(paths);
        return Err(journal_error(what, e));
    }
    // The lock on the old file is released when it is closed, here: by then the new file is at
    // the path, and whoever waited for the lock will notice and reopen it.
    let file = open_at(&paths.journal).map_err(|(what, e)| journal_error(what, e))?;
    state.replace(file);
    Ok(CompactionReport {
        kept: kept_entries,
        dropped: entries - kept_entries,
        skipped: lines.len() - entries,
        bytes_before,
        bytes_after,
        rotated_to: rotate.then(|| paths.rotated(1)),
    })
}

/// First pass: every line's length and deployment.
///
/// # Errors
/// [`Error::Journal`] on a read error, or on a line that looks like an entry but that this version
/// cannot read: which deployment it belongs to is unknown, so nothing can be decided.
fn scan(file: &File, paths: &Paths) -> Result<(Vec<LineInfo>, Vec<DeploymentInfo>)> {
    let fail = |reason: String, e: Box<dyn std::error::Error + Send + Sync>| {
        Error::journal(paths.journal.display().to_string(), reason, e)
    };
    let mut reader = BufReader::new(file);
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| fail("compaction: cannot seek".into(), e.into()))?;
    let mut lines = Vec::new();
    let mut deployments: Vec<DeploymentInfo> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut offset = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let len = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| fail("compaction: cannot read".into(), e.into()))?;
        if len == 0 {
            break;
        }
        let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let deployment = match classify(content) {
            Line::Entry(entry) => {
                let index = lines.len();
                let id = entry.deployment.id().to_owned();
                let unfinished = step(entry.deployment, Signal::Resumed).is_ok();
                let next = deployments.len();
                let d = *ids.entry(id.to_string()).or_insert(next);
                let info = DeploymentInfo {
                    last_line: index,
                    unfinished,
                };
                match deployments.get_mut(d) {
                    Some(known) => *known = info,
                    None => deployments.push(info),
                }
                Some(d)
            }
            Line::Skip(_) => None,
            Line::Unreadable(e) => {
                return Err(fail(
                    format!(
                        "compaction: unreadable entry at offset {offset} (written by another version of \
                         bluegreen, or edited?); not compacting"
                    ),
                    e.into(),
                ));
            }
        };
        lines.push(LineInfo {
            len: len as u64,
            deployment,
        });
        offset += len as u64;
    }
    Ok((lines, deployments))
}

/// Which lines to keep (see [`Retention`]).
fn plan(lines: &[LineInfo], deployments: &[DeploymentInfo], keep: Retention) -> Vec<bool> {
    // Rank 0 is the deployment with the latest entry.
    let mut order: Vec<usize> = (0..deployments.len()).collect();
    order.sort_unstable_by_key(|&d| std::cmp::Reverse(deployments[d].last_line));
    let mut rank = vec![0; deployments.len()];
    for (r, &d) in order.iter().enumerate() {
        rank[d] = r;
    }
    let last_entry = lines.iter().rposition(|l| l.deployment.is_some());
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let Some(d) = line.deployment else {
                return false;
            };
            let latest = deployments[d].last_line == i;
            Some(i) == last_entry
                || rank[d] < keep.detailed
                || (latest && (rank[d] < keep.deployments || deployments[d].unfinished))
        })
        .collect()
}

/// Second pass: the kept lines to the compaction's temporary file and, if `rotate`, the others to
/// the rotated file's; both `fsync`ed. Returns the compacted size.
fn write_temps(file: &File, paths: &Paths, lines: &[LineInfo], kept: &[bool], rotate: bool) -> Step<u64> {
    let create = |path: &Path| {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| ("create a compaction file", e))
    };
    let mut kept_out = io::BufWriter::new(create(&paths.compact_tmp())?);
    let mut dropped_out = match rotate {
        true => Some(io::BufWriter::new(create(&paths.rotate_tmp())?)),
        false => None,
    };
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(0)).map_err(|e| ("seek", e))?;
    let mut bytes_after = 0;
    let mut buf = Vec::new();
    for (line, &keep) in lines.iter().zip(kept) {
        buf.clear();
        (&mut reader)
            .take(line.len)
            .read_to_end(&mut buf)
            .map_err(|e| ("read", e))?;
        if keep {
            kept_out.write_all(&buf).map_err(|e| ("write the compacted file", e))?;
            bytes_after += line.len;
        } else if let Some(out) = &mut dropped_out {
            out.write_all(&buf).map_err(|e| ("write the rotated file", e))?;
        }
    }
    let finish = |out: io::BufWriter<File>, what| {
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)
            .and_then(|f| f.sync_all())
            .map_err(|e| (what, e))
    };
    finish(kept_out, "sync the compacted file")?;
    if let Some(out) = dropped_out {
        finish(out, "sync the rotated file")?;
    }
    Ok(bytes_after)
}

/// Shifts the rotated files, renames the temporary files into place, and makes that durable.
fn replace(paths: &Paths, rotated_files: usize) -> Step<()> {
    if rotated_files > 0 {
        for n in (1..rotated_files).rev() {
            match std::fs::rename(paths.rotated(n), paths.rotated(n + 1)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(("shift the rotated files", e)),
            }
        }
        std::fs::rename(paths.rotate_tmp(), paths.rotated(1)).map_err(|e| ("rename the rotated file", e))?;
        sync_dir(&paths.journal)?;
    }
    std::fs::rename(paths.compact_tmp(), &paths.journal).map_err(|e| ("rename the compacted file", e))?;
    sync_dir(&paths.journal)
}

/// Best effort: a failed compaction's temporary files (the next open removes what is left).
fn remove_temps(paths: &Paths) {
    if let Err((what, e)) = paths.remove_stale_temps() {
        tracing::warn!(journal = %paths.journal.display(), "after a failed compaction, {what}: {e}");
    }
}
