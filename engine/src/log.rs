//! Guest log lines: what a transform may write to the relay's log, per
//! record and per window, and the notice when it wrote more.
//!
//! A transform logs through the contract's `log` import. Every line is cut to
//! [`MAX_LINE_BYTES`]; one call (`init` or one record) may write
//! [`PER_CALL_LINES`] lines and [`PER_CALL_BYTES`] bytes, and an instance
//! [`PER_WINDOW_LINES`] lines and [`PER_WINDOW_BYTES`] bytes per window. A
//! window lasts at most [`MAX_WINDOW`] and ends earlier when
//! [`TransformInstance::reset_log_budget`](super::TransformInstance::reset_log_budget)
//! is called, which the embedding code is meant to do at the start of each
//! invocation (so that the window is the invocation). Lines over budget are
//! dropped and counted; the relay then says so in one WARN line at the first
//! call of a window that dropped lines, and sums up what later calls of the
//! window dropped when the next window starts. Lines at levels the log
//! filter does not show use none of the budget.

use std::time::{Duration, Instant};

/// Longest guest log line kept, in bytes; longer ones are cut.
pub const MAX_LINE_BYTES: usize = 4096;
/// Lines one call (`init` or one record) may write.
pub const PER_CALL_LINES: usize = 20;
/// Bytes one call may write.
pub const PER_CALL_BYTES: usize = 16 << 10;
/// Lines an instance may write per window (an invocation, at most
/// [`MAX_WINDOW`]).
pub const PER_WINDOW_LINES: usize = 200;
/// Bytes an instance may write per window.
pub const PER_WINDOW_BYTES: usize = 256 << 10;
/// Longest window: an instance that is not reset gets a new budget after it.
pub const MAX_WINDOW: Duration = Duration::from_secs(10);

/// The caps, for messages.
pub(crate) const CAPS: &str = "at most 20 lines (16 KiB) per record and 200 lines (256 KiB) \
                               per invocation or 10 s, lines cut at 4 KiB";

/// Counts what a transform instance logs against its budget.
#[derive(Debug)]
pub(crate) struct LogBudget {
    call_lines: usize,
    call_bytes: usize,
    window_lines: usize,
    window_bytes: usize,
    window_started: Instant,
    /// Dropped in the current call.
    call_dropped: Dropped,
    /// Dropped in this window and not yet reported.
    unreported: Dropped,
    /// Whether this window already had its notice.
    noticed: bool,
}

/// Lines (and their bytes) that were not written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub(crate) lines: u64,
    pub(crate) bytes: u64,
}

impl Dropped {
    fn add(&mut self, bytes: usize) {
        self.lines += 1;
        self.bytes += bytes as u64;
    }

    fn any(&self) -> bool {
        self.lines > 0
    }
}

/// What to say after a call about lines it could not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    /// This call dropped lines (the first in its window to do so).
    Call(Dropped),
    /// Lines dropped by later calls of the window that just ended.
    Window(Dropped),
}

impl LogBudget {
    pub(crate) fn new() -> Self {
        LogBudget {
            call_lines: 0,
            call_bytes: 0,
            window_lines: 0,
            window_bytes: 0,
            window_started: Instant::now(),
            call_dropped: Dropped::default(),
            unreported: Dropped::default(),
            noticed: false,
        }
    }

    /// A call starts: a fresh per-call budget, and a fresh window if the
    /// current one is over. Returns the summary of the window that ended,
    /// if it dropped lines that were not reported yet.
    pub(crate) fn start_call(&mut self) -> Option<Notice> {
        self.call_lines = 0;
        self.call_bytes = 0;
        self.call_dropped = Dropped::default();
        if self.window_started.elapsed() >= MAX_WINDOW {
            return self.reset();
        }
        None
    }

    /// Starts a new window; returns the summary of the old one, if any.
    pub(crate) fn reset(&mut self) -> Option<Notice> {
        let unreported = std::mem::take(&mut self.unreported);
        self.window_lines = 0;
        self.window_bytes = 0;
        self.window_started = Instant::now();
        self.noticed = false;
        unreported.any().then_some(Notice::Window(unreported))
    }

    /// Whether a line of `bytes` bytes may be written; counts it either way.
    pub(crate) fn admit(&mut self, bytes: usize) -> bool {
        let fits = self.call_lines < PER_CALL_LINES
            && self.call_bytes + bytes <= PER_CALL_BYTES
            && self.window_lines < PER_WINDOW_LINES
            && self.window_bytes + bytes <= PER_WINDOW_BYTES;
        if fits {
            self.call_lines += 1;
            self.call_bytes += bytes;
            self.window_lines += 1;
            self.window_bytes += bytes;
        } else {
            self.call_dropped.add(bytes);
        }
        fits
    }

    /// The call is over: what to say about the lines it dropped. The first
    /// call of a window that drops lines is reported at once; later ones are
    /// summed up for the end of the window.
    pub(crate) fn end_call(&mut self) -> Option<Notice> {
        let dropped = std::mem::take(&mut self.call_dropped);
        if !dropped.any() {
            return None;
        }
        if self.noticed {
            self.unreported.lines += dropped.lines;
            self.unreported.bytes += dropped.bytes;
            return None;
        }
        self.noticed = true;
        Some(Notice::Call(dropped))
    }
}

/// Cuts `message` to at most [`MAX_LINE_BYTES`] on a character boundary.
pub(crate) fn cut(message: &mut String) {
    if message.len() > MAX_LINE_BYTES {
        let mut end = MAX_LINE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(" [cut]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_gets_twenty_lines_and_the_first_drop_is_reported() {
        let mut budget = LogBudget::new();
        assert_eq!(budget.start_call(), None);
        let written = (0..11_829).filter(|_| budget.admit(100)).count();
        assert_eq!(written, PER_CALL_LINES);
        assert_eq!(
            budget.end_call(),
            Some(Notice::Call(Dropped {
                lines: 11_809,
                bytes: 1_180_900
            }))
        );
    }

    #[test]
    fn a_call_gets_sixteen_kib() {
        let mut budget = LogBudget::new();
        budget.start_call();
        let written = (0..20).filter(|_| budget.admit(4096)).count();
        assert_eq!(written, 4);
    }

    #[test]
    fn the_window_caps_many_calls_and_is_summed_up_when_reset() {
        let mut budget = LogBudget::new();
        let mut written = 0;
        let mut notices = Vec::new();
        for _ in 0..100 {
            notices.extend(budget.start_call());
            written += (0..5).filter(|_| budget.admit(10)).count();
            notices.extend(budget.end_call());
        }
        assert_eq!(written, PER_WINDOW_LINES);
        // One notice at the first drop; the other 59 calls' drops wait.
        assert_eq!(
            notices,
            vec![Notice::Call(Dropped {
                lines: 5,
                bytes: 50
            })]
        );
        assert_eq!(
            budget.reset(),
            Some(Notice::Window(Dropped {
                lines: 295,
                bytes: 2_950
            }))
        );
        budget.start_call();
        assert!(budget.admit(10), "a new window has a new budget");
        assert_eq!(budget.end_call(), None);
        assert_eq!(budget.reset(), None);
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let mut line = "é".repeat(3000);
        cut(&mut line);
        assert!(line.len() <= MAX_LINE_BYTES + " [cut]".len());
        assert!(line.ends_with("é [cut]"));
        let mut short = "short".to_owned();
        cut(&mut short);
        assert_eq!(short, "short");
    }
}
