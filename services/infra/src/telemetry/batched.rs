//! Standard error written in batches, for `hooklog serve`.
//!
//! A line is appended to a buffer in memory; a thread writes the buffer out every
//! [`FLUSH_INTERVAL`]. Under load that is one `write` for many lines instead of one per line
//! (a system call on the request's thread was about a twentieth of the ingress's CPU per
//! delivery). What this keeps:
//! - **Order**: every write of the buffer happens under one lock and takes the whole buffer,
//!   so lines reach standard error in the order they were logged.
//! - **Warnings and errors at once**: a `WARN` or `ERROR` line writes the buffer, itself
//!   included, before the logging call returns, so what explains a failure is out before the
//!   process acts on it (exits, say).
//! - **Nothing dropped, memory bounded**: a buffer past [`MAX_BUFFERED`] (standard error slower
//!   than the logging) is written by the thread that logs, which waits for it, rather than
//!   grow or be thrown away.
//! - **Exit and panic**: [`flush`] writes what is left, and is called when `main` returns and
//!   from the panic hook. Only a process killed outright (`SIGKILL`) loses lines: those of its
//!   last [`FLUSH_INTERVAL`], below `WARN`.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long an `INFO` line may wait in memory.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(5);
/// Bytes buffered past which the logging thread writes them itself.
pub const MAX_BUFFERED: usize = 1 << 20;

/// The buffer and where it goes.
pub struct Batched<W> {
    buffer: Mutex<Vec<u8>>,
    /// Held while a batch is taken and written, so batches go out in order.
    out: Mutex<W>,
}

impl<W: Write> Batched<W> {
    pub fn new(out: W) -> Self {
        Self {
            buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
            out: Mutex::new(out),
        }
    }

    /// Writes out everything logged so far.
    pub fn flush(&self) {
        let mut out = lock(&self.out);
        let batch = std::mem::take(&mut *lock(&self.buffer));
        if !batch.is_empty() {
            // Standard error gone (closed by the parent): nothing else can be told.
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
    }

    fn append(&self, line: &[u8], at_once: bool) {
        let full = {
            let mut buffer = lock(&self.buffer);
            buffer.extend_from_slice(line);
            buffer.len() >= MAX_BUFFERED
        };
        if at_once || full {
            self.flush();
        }
    }
}

/// A lock whose data stays usable after a panic elsewhere: it holds bytes only.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The writer `tracing-subscriber` asks for each line.
#[derive(Clone)]
pub struct BatchedWriter<W: Write + Send + 'static> {
    shared: Arc<Batched<W>>,
}

impl<W: Write + Send + 'static> BatchedWriter<W> {
    pub fn new(shared: Arc<Batched<W>>) -> Self {
        Self { shared }
    }
}

/// One line's writer: `at_once` for `WARN` and `ERROR`.
pub struct Line<'a, W: Write> {
    shared: &'a Batched<W>,
    at_once: bool,
}

impl<W: Write> Write for Line<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.shared.append(bytes, self.at_once);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + Send + 'static> MakeWriter<'a> for BatchedWriter<W> {
    type Writer = Line<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            shared: &self.shared,
            at_once: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line {
            shared: &self.shared,
            at_once: *meta.level() <= Level::WARN,
        }
    }
}

static STDERR: OnceLock<Option<Arc<Batched<std::io::Stderr>>>> = OnceLock::new();

/// The process's batched standard error, its flushing thread and a panic hook that flushes
/// first; the same one however often it is asked for. None when no thread could be started
/// for it: the caller then writes each line as it is logged.
pub(super) fn stderr() -> Option<Arc<Batched<std::io::Stderr>>> {
    STDERR
        .get_or_init(|| {
            let shared = Arc::new(Batched::new(std::io::stderr()));
            let flushing = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name("log-flush".to_owned())
                .spawn(move || loop {
                    std::thread::sleep(FLUSH_INTERVAL);
                    flushing.flush();
                });
            if let Err(err) = spawned {
                eprintln!("hooklog: no log flushing thread ({err}); writing each line at once");
                return None;
            }
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                flush();
                previous(info);
            }));
            Some(shared)
        })
        .clone()
}

/// Writes out what the batched standard error holds, if it is in use.
pub fn flush() {
    if let Some(Some(shared)) = STDERR.get() {
        shared.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn logged_with(sink: &Sink) -> (Arc<Batched<Sink>>, impl tracing::Subscriber) {
        let shared = Arc::new(Batched::new(sink.clone()));
        let subscriber = tracing_subscriber::fmt()
            .without_time()
            .with_ansi(false)
            .with_writer(BatchedWriter::new(Arc::clone(&shared)))
            .finish();
        (shared, subscriber)
    }

    #[test]
    fn given_info_lines_when_logged_then_they_wait_for_a_flush_and_come_out_in_order() {
        let sink = Sink::default();
        let (shared, subscriber) = logged_with(&sink);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("first");
            tracing::info!("second");
        });
        assert_eq!(sink.text(), "", "info lines wait in memory");
        shared.flush();
        let text = sink.text();
        let (first, second) = (text.find("first").unwrap(), text.find("second").unwrap());
        assert!(first < second, "{text}");
        shared.flush();
        assert_eq!(sink.text(), text, "a flush writes each line once");
    }

    #[test]
    fn given_buffered_info_when_a_warning_is_logged_then_both_are_written_before_the_call_returns()
    {
        let sink = Sink::default();
        let (_shared, subscriber) = logged_with(&sink);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("context");
            tracing::warn!("trouble");
            let text = sink.text();
            assert!(
                text.contains("context") && text.contains("trouble"),
                "{text}"
            );
            assert!(text.find("context") < text.find("trouble"), "{text}");
            tracing::error!("worse");
            assert!(sink.text().contains("worse"));
        });
    }

    #[test]
    fn given_a_full_buffer_when_a_line_is_logged_then_the_logging_thread_writes_it_out() {
        let sink = Sink::default();
        let (_shared, subscriber) = logged_with(&sink);
        let long = "x".repeat(4096);
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..(MAX_BUFFERED / long.len() + 1) {
                tracing::info!(long = long.as_str(), "line");
            }
        });
        let written = sink.text().len();
        assert!(written >= MAX_BUFFERED, "{written} bytes written");
    }
}
