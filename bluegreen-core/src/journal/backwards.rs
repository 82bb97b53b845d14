//! Reading a file's lines from the end towards the start, a chunk at a time.
//!
//! This is what makes [`FileJournal::tail`](super::FileJournal) cost what the last `n` lines cost,
//! however long the journal is.

use std::io::{self, Read, Seek, SeekFrom};

/// How much a journal reads at a time, going backwards.
pub(crate) const CHUNK: usize = 64 * 1024;

/// One line, as found going backwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// Offset of the line's first byte in the file.
    pub(crate) offset: u64,
    /// The line's bytes, without its `\n`.
    pub(crate) bytes: Vec<u8>,
    /// Whether the line ends with `\n` (only the very last line of a file can lack it).
    pub(crate) terminated: bool,
}

/// Yields the lines of `file[..end]`, last first.
///
/// The reader seeks the file it is given; callers that share a handle must hold it exclusively
/// while reading (appends in `O_APPEND` mode ignore the position, so they need not wait).
pub(crate) struct Backwards<R> {
    file: R,
    /// How much to read per step when a line fits; doubled while a line does not.
    chunk: usize,
    /// Offset in the file of `buf[0]`.
    buf_start: u64,
    /// The bytes `[buf_start, end of the next line to yield)`, including that line's `\n`.
    buf: Vec<u8>,
    /// Total bytes read so far (for tests and diagnostics).
    bytes_read: u64,
}

impl<R: Read + Seek> Backwards<R> {
    /// Starts at `end` (usually the file's length), reading `chunk` bytes at a time.
    pub(crate) fn new(file: R, end: u64, chunk: usize) -> Self {
        Backwards {
            file,
            chunk: chunk.max(1),
            buf_start: end,
            buf: Vec::new(),
            bytes_read: 0,
        }
    }

    /// How many bytes have been read from the file so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next line going backwards, or `None` at the start of the file.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line>> {
        if self.buf.is_empty() {
            if self.buf_start == 0 {
                return Ok(None);
            }
            self.read_more()?;
        }
        let terminated = self.buf.last() == Some(&b'\n');
        let mut content_end = self.buf.len() - usize::from(terminated);
        // Where the `\n` before the line may be: first the whole buffer, then only what each
        // read adds in front (the rest is known to hold none).
        let mut search_end = content_end;
        loop {
            if let Some(i) = self.buf[..search_end].iter().rposition(|&b| b == b'\n') {
                let bytes = self.buf[i + 1..content_end].to_vec();
                self.buf.truncate(i + 1);
                return Ok(Some(Line {
                    offset: self.buf_start + i as u64 + 1,
                    bytes,
                    terminated,
                }));
            }
            if self.buf_start == 0 {
                let mut bytes = std::mem::take(&mut self.buf);
                bytes.truncate(content_end);
                return Ok(Some(Line {
                    offset: 0,
                    bytes,
                    terminated,
                }));
            }
            let added = self.read_more()?;
            content_end += added;
            search_end = added;
        }
    }

    /// Reads the bytes just before `buf_start` into the front of `buf`: one chunk, or as much as
    /// the buffer already holds if that is more (so a long line costs a linear amount of copying).
    /// Returns how many bytes it added.
    fn read_more(&mut self) -> io::Result<usize> {
        let want = self.chunk.max(self.buf.len());
        let n = u64::try_from(want).unwrap_or(u64::MAX).min(self.buf_start);
        let start = self.buf_start - n;
        let front_len = usize::try_from(n).unwrap_or(want);
        let mut front = vec![0; front_len];
        self.file.seek(SeekFrom::Start(start))?;
        self.file.read_exact(&mut front)?;
        self.bytes_read += n;
        front.extend_from_slice(&self.buf);
        self.buf = front;
        self.buf_start = start;
        Ok(front_len)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;

    fn all_lines(data: &[u8], chunk: usize) -> Vec<Line> {
        let mut rev = Backwards::new(Cursor::new(data), data.len() as u64, chunk);
        let mut out = Vec::new();
        while let Some(line) = rev.next_line().unwrap() {
            out.push(line);
        }
        out.reverse();
        out
    }

    /// The lines as a forward split finds them.
    fn expected(data: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        let mut offset = 0;
        for piece in data.split_inclusive(|&b| b == b'\n') {
            let terminated = piece.last() == Some(&b'\n');
            let bytes = piece[..piece.len() - usize::from(terminated)].to_vec();
            out.push(Line {
                offset,
                bytes,
                terminated,
            });
            offset += piece.len() as u64;
        }
        out
    }

    #[test]
    fn empty_file_has_no_lines() {
        assert!(all_lines(b"", 4).is_empty());
    }

    #[test]
    fn finds_lines_across_chunks_and_an_unterminated_tail() {
        let data = b"one\n\ntwo two two two\nthree\nfour";
        for chunk in [1, 2, 3, 5, 8, 64] {
            assert_eq!(all_lines(data, chunk), expected(data), "chunk {chunk}");
        }
    }

    #[test]
    fn reads_only_what_the_last_line_needs() {
        let mut data = Vec::new();
        for i in 0..10_000 {
            data.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let mut rev = Backwards::new(Cursor::new(&data), data.len() as u64, 64);
        let last = rev.next_line().unwrap().unwrap();
        assert_eq!(last.bytes, b"line 9999");
        assert_eq!(rev.bytes_read(), 64);
    }

    proptest! {
        #[test]
        fn matches_a_forward_split(
            lines in prop::collection::vec("[a-z]{0,40}", 0..30),
            torn in prop::option::of("[a-z]{1,20}"),
            chunk in 1usize..100,
        ) {
            let mut data = Vec::new();
            for line in &lines {
                data.extend_from_slice(line.as_bytes());
                data.push(b'\n');
            }
            if let Some(torn) = torn {
                data.extend_from_slice(torn.as_bytes());
            }
            prop_assert_eq!(all_lines(&data, chunk), expected(&data));
        }
    }
}
