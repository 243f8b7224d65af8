//! A progress bar for the analyzer's long runs: on stderr, only when stderr is a terminal
//! (never in a pipe or a CI log), and only once a run has taken a second — a quick answer
//! does not flash a bar.

use gatehouse_analyzer::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How long a run goes before its bar is drawn.
const AFTER: Duration = Duration::from_secs(1);

/// The bar of one command (`what` names the units: "principals", "files").
#[derive(Debug)]
pub(crate) struct Bar {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Bar {
    pub(crate) fn new(what: &str) -> Bar {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
            let template = format!("{{bar:40}} {{pos}}/{{len}} {what} {{elapsed}}");
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            bar
        });
        Bar {
            bar,
            started: Instant::now(),
        }
    }

    fn show_when_slow(&self, bar: &ProgressBar) {
        if bar.is_hidden() && self.started.elapsed() >= AFTER {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}

impl Progress for Bar {
    fn add_total(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc_length(n);
            self.show_when_slow(b);
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
            self.show_when_slow(b);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
