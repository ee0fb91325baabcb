//! Access log lines reach stdout from a thread of their own, so a request never waits on
//! whoever reads the proxy's stdout (a container runtime, a log shipper). Lines wait in a
//! queue bounded in lines and in bytes (a line holds client-chosen URLs and headers); when
//! the reader falls behind and the queue is full, a line is dropped and counted in
//! `mesh_access_log_dropped_total` rather than stalling the proxy. Lines
//! still queued when the process exits are lost.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};

/// Access log lines dropped because stdout was not read fast enough.
pub const DROPPED: &str = "mesh_access_log_dropped_total";

/// Lines waiting for stdout, at most.
pub const QUEUE_LINES: usize = 4096;
/// Bytes of lines waiting for stdout, at most.
pub const QUEUE_BYTES: usize = 16 << 20;

/// The queue into one writing thread.
pub struct Writer {
    queue: SyncSender<Vec<u8>>,
    /// Bytes queued and not yet written.
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl Writer {
    /// Starts the thread that writes queued lines to `out`, one `write_all` per line so
    /// lines stay whole.
    pub fn spawn<W: Write + Send + 'static>(
        mut out: W,
        capacity: usize,
        max_bytes: usize,
    ) -> std::io::Result<Self> {
        let (queue, lines) = sync_channel::<Vec<u8>>(capacity);
        let bytes = Arc::new(AtomicUsize::new(0));
        let written = bytes.clone();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                for line in lines {
                    // Nobody to tell about a broken stdout; the next line tries again.
                    let _ = out.write_all(&line).and_then(|()| out.flush());
                    written.fetch_sub(line.len(), Ordering::Relaxed);
                }
            })?;
        Ok(Self {
            queue,
            bytes,
            max_bytes,
        })
    }

    /// Queues `line` without waiting; false (and counted) when it was dropped.
    pub fn submit(&self, line: Vec<u8>) -> bool {
        let len = line.len();
        let before = self.bytes.fetch_add(len, Ordering::Relaxed);
        let queued = before + len <= self.max_bytes && self.queue.try_send(line).is_ok();
        if !queued {
            self.bytes.fetch_sub(len, Ordering::Relaxed);
            metrics::counter!(DROPPED).increment(1);
        }
        queued
    }
}

/// Writes `line` to stdout through the process's writer thread, or directly if that
/// thread could not be started.
pub fn to_stdout(line: Vec<u8>) {
    static STDOUT: OnceLock<Option<Writer>> = OnceLock::new();
    let writer = STDOUT.get_or_init(|| {
        metrics::describe_counter!(
            DROPPED,
            "Access log lines dropped because stdout was not read fast enough."
        );
        Writer::spawn(std::io::stdout(), QUEUE_LINES, QUEUE_BYTES)
            .map_err(|error| {
                tracing::warn!(%error, "access log: no writer thread; writing on the request path");
            })
            .ok()
    });
    match writer {
        Some(writer) => {
            writer.submit(line);
        }
        None => {
            let _ = std::io::stdout().lock().write_all(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};

    /// A stdout whose reader does not read until the gate opens.
    #[derive(Clone, Default)]
    struct Gated {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, changed) = &*self.open;
            let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
            while !*open {
                open = changed.wait(open).unwrap_or_else(|p| p.into_inner());
            }
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A stuck stdout: submitting never waits, the queue holds what it can, the rest is
    /// dropped; once stdout is read, the queued lines come out whole.
    #[test]
    fn a_stuck_stdout_drops_lines_instead_of_blocking() {
        let out = Gated::default();
        let writer = Writer::spawn(out.clone(), 4, QUEUE_BYTES).expect("writer thread");
        let started = Instant::now();
        let queued = (0..20)
            .filter(|i| writer.submit(format!("line {i}\n").into_bytes()))
            .count();
        assert!(started.elapsed() < Duration::from_secs(1), "submit waited");
        // The queue's 4, and perhaps one the thread took and is stuck writing.
        assert!((4..=5).contains(&queued), "queued {queued}");
        let (open, changed) = &*out.open;
        *open.lock().expect("gate") = true;
        changed.notify_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        let text = loop {
            let text = String::from_utf8(out.written.lock().expect("out").clone()).expect("utf-8");
            if text.lines().count() == queued || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), queued, "{text:?}");
        assert_eq!(lines[0], "line 0");
        assert!(lines.iter().all(|l| l.starts_with("line ")));
    }

    /// Long lines (a client's long URL) fill the queue by bytes before its line count.
    #[test]
    fn the_queue_is_bounded_in_bytes_too() {
        let out = Gated::default();
        let writer = Writer::spawn(out.clone(), 1000, 1000).expect("writer thread");
        let long = vec![b'x'; 400];
        let queued = (0..10).filter(|_| writer.submit(long.clone())).count();
        assert_eq!(queued, 2, "1000 bytes hold two 400-byte lines");
        assert!(
            !writer.submit(vec![b'y'; 300]),
            "a third would pass 1000 bytes"
        );
        assert!(writer.submit(vec![b'z'; 200]), "what fits still goes");
        let (open, changed) = &*out.open;
        *open.lock().expect("gate") = true;
        changed.notify_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        while writer.bytes.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(out.written.lock().expect("out").len(), 1000);
        assert!(
            writer.submit(vec![b'x'; 1000]),
            "written bytes free the queue"
        );
    }
}
