//! Log lines leave the process a few milliseconds at a time: each line is added to a buffer in
//! memory, and a thread of the buffer's own writes what has gathered to stderr every `EVERY`, in
//! one write. Written a line at a time, each request paid a system call of its own, and waited
//! for stderr's lock while other workers wrote theirs: the access log cost 5.4 µs of a read's
//! 36 µs of server CPU (bench/RESULTS.md of aaacc39; 2.2 µs gathered, that of 39d23d2).
//!
//! A line reaches stderr at most `EVERY` after it was logged, and every line logged before the
//! server stops is written before the process exits (`Written` is dropped last in `main`). A
//! process killed outright loses the lines of its last `EVERY`.

use std::{
    io::{self, Write},
    mem,
    sync::{Arc, Mutex, MutexGuard},
    thread,
    time::Duration,
};

const EVERY: Duration = Duration::from_millis(10);
/// A buffer this full is written by the line that filled it, so memory stays bounded when
/// stderr drains slower than lines come (a full pipe): those lines wait, as they did before.
const FULL: usize = 256 * 1024;

struct Buffer<W> {
    lines: Mutex<Vec<u8>>,
    /// Where gathered lines go, held while they are taken and written, so they reach it in the
    /// order they were logged.
    out: Mutex<W>,
}

impl<W: Write> Buffer<W> {
    fn write_gathered(&self) -> io::Result<()> {
        let mut out = lock(&self.out);
        let gathered = mem::take(&mut *lock(&self.lines));
        if gathered.is_empty() {
            return Ok(());
        }
        out.write_all(&gathered)?;
        out.flush()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where env_logger writes each line: into the buffer.
pub struct Lines<W = io::Stderr>(Arc<Buffer<W>>);

impl<W: Write> Write for Lines<W> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let full = {
            let mut lines = lock(&self.0.lines);
            lines.extend_from_slice(line);
            lines.len() >= FULL
        };
        if full {
            self.0.write_gathered()?;
        }
        Ok(line.len())
    }

    /// env_logger flushes after every line; writing then would undo the gathering. The buffer's
    /// thread, and `Written`, write it.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Starts the thread that writes what is gathered; writes what is still gathered when dropped.
pub struct Written<W: Write = io::Stderr>(Arc<Buffer<W>>);

impl<W: Write + Send + 'static> Written<W> {
    pub fn start_thread(&self) -> io::Result<()> {
        let buffer = self.0.clone();
        thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                loop {
                    thread::sleep(EVERY);
                    // Nowhere to report a failed write to stderr: the next one tries again.
                    let _ = buffer.write_gathered();
                }
            })?;
        Ok(())
    }
}

impl<W: Write> Drop for Written<W> {
    fn drop(&mut self) {
        let _ = self.0.write_gathered();
    }
}

/// The writer for env_logger, gathering for `out`, and what writes it there.
pub fn new<W: Write>(out: W) -> (Lines<W>, Written<W>) {
    let buffer = Arc::new(Buffer {
        lines: Mutex::default(),
        out: Mutex::new(out),
    });
    (Lines(buffer.clone()), Written(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out_of<W: Write>(buffer: &Buffer<W>) -> MutexGuard<'_, W> {
        lock(&buffer.out)
    }

    #[test]
    fn lines_wait_in_the_buffer_until_it_is_full_or_the_thread_writes_them_in_order() {
        let (mut lines, written) = new(Vec::new());
        lines.write_all(b"one\n").unwrap();
        lines.flush().unwrap();
        assert!(
            out_of(&lines.0).is_empty(),
            "a flush leaves the line gathered"
        );

        let full = vec![b'x'; FULL];
        lines.write_all(&full).unwrap();
        assert!(
            lock(&lines.0.lines).is_empty(),
            "the line that fills the buffer writes it"
        );
        lines.write_all(b"two\n").unwrap();

        written.start_thread().unwrap();
        let expected = [&b"one\n"[..], &full, b"two\n"].concat();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while *out_of(&lines.0) != expected {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread writes what is gathered"
            );
            thread::sleep(EVERY);
        }
    }
}
