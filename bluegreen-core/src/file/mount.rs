//! Whether two paths are on one mount, so that a rename between them can work.

use std::io;
use std::path::Path;

use rustix::fs::{statx, AtFlags, StatxFlags, CWD};

/// Whether `a` and `b` are on the same mount, by their mount ids (`statx` with
/// `STATX_MNT_ID`, Linux 5.8+); `None` when the kernel does not report mount ids.
///
/// Same mount is exactly the condition under which `rename(2)` between them does not fail with
/// `EXDEV`. Comparing device ids is not enough: a bind mount shares its source's device id,
/// yet renames across its mount point fail. Symlinks in the paths are followed.
///
/// # Errors
/// The I/O error of `statx` on either path (missing, no permission).
///
/// Blocking (`statx`): call from `spawn_blocking`.
pub fn same_mount(a: &Path, b: &Path) -> io::Result<Option<bool>> {
    let (Some(a), Some(b)) = (mount_id(a)?, mount_id(b)?) else {
        return Ok(None);
    };
    Ok(Some(a == b))
}

fn mount_id(path: &Path) -> io::Result<Option<u64>> {
    match statx(CWD, path, AtFlags::empty(), StatxFlags::MNT_ID) {
        Ok(stx) if StatxFlags::from_bits_retain(stx.stx_mask).contains(StatxFlags::MNT_ID) => Ok(Some(stx.stx_mnt_id)),
        Ok(_) => Ok(None),
        Err(rustix::io::Errno::NOSYS) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_and_its_subdirectory_share_a_mount() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert_ne!(same_mount(dir.path(), &sub).unwrap(), Some(false));
        // /proc is always a mount of its own.
        assert_ne!(same_mount(dir.path(), Path::new("/proc")).unwrap(), Some(true));
        let missing = same_mount(dir.path(), &dir.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
