//! Progress bars of `import`, `pull` and `watch`: rate and ETA on stderr when it is a
//! terminal; nothing otherwise, or with `--quiet`. The library reports
//! (`ivre_connector::snapshot::progress`); this draws.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ivre_connector::snapshot::progress::{Progress, Unit};
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A bar on stderr, one per phase.
#[derive(Debug, Default)]
pub struct Bar {
    current: Mutex<Option<ProgressBar>>,
}

/// The progress receiver of a command: a [`Bar`] when stderr is a terminal and `quiet`
/// is off, else none.
pub fn for_terminal(quiet: bool) -> Option<Arc<dyn Progress>> {
    (!quiet && std::io::stderr().is_terminal())
        .then(|| Arc::new(Bar::default()) as Arc<dyn Progress>)
}

/// The bar's look for `unit`, with or without a known total.
fn style(unit: Unit, known_total: bool) -> ProgressStyle {
    let template = match (unit, known_total) {
        (Unit::Bytes, true) => {
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({binary_bytes_per_sec}, ETA {eta})"
        }
        (Unit::Bytes, false) => "{spinner} {msg} {bytes} ({binary_bytes_per_sec})",
        (Unit::Records, true) => {
            "{spinner} {msg} [{bar:30}] {human_pos}/{human_len} records ({per_sec}, ETA {eta})"
        }
        (Unit::Records, false) => "{spinner} {msg} {human_pos} records ({per_sec})",
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Progress for Bar {
    fn start(&self, what: &str, unit: Unit, total: Option<u64>) {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        bar.set_style(style(unit, total.is_some()));
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = current.replace(bar) {
            old.finish_and_clear();
        }
    }

    fn set(&self, done: u64) {
        if let Some(bar) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            bar.finish_and_clear();
        }
    }
}
