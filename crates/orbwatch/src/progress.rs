//! Progress of a hunt on a terminal: one line per phase, so that a 1 GB
//! hunt is never silent. Reading and matching shows %, throughput and ETA
//! (the inputs' sizes are known); the behaviour replay and the evidence
//! that follow get a spinner; each phase leaves one line with its time.
//! Nothing is drawn when stderr is not a terminal or with `-q`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

/// The phases after the sweep, watched from a thread.
pub struct Phases {
    sweep: ProgressBar,
    done: Arc<AtomicBool>,
    after: Option<JoinHandle<()>>,
}

impl Phases {
    /// The bar of the sweep, for [`orbwatch_engine::Engine::with_progress`],
    /// and a watcher that starts the next phase's line when it finishes.
    pub fn start(behaviour: bool) -> Phases {
        let style = ProgressStyle::with_template(
            "reading and matching {wide_bar} {percent:>3}%  {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let sweep = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_finish(ProgressFinish::AndLeave);
        let done = Arc::new(AtomicBool::new(false));
        let watched = sweep.clone();
        let stop = done.clone();
        let after = std::thread::spawn(move || {
            while !watched.is_finished() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // A finished bar leaves its line without ending it.
            eprintln!();
            let what = if behaviour {
                "behaviour detectors and evidence"
            } else {
                "evidence"
            };
            let spin = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                )
                .with_message(what);
            spin.enable_steady_tick(Duration::from_millis(120));
            let clock = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            spin.set_style(
                ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            spin.finish_with_message(format!(
                "{what}: done in {:.1} s",
                clock.elapsed().as_secs_f64()
            ));
            eprintln!();
        });
        Phases {
            sweep,
            done,
            after: Some(after),
        }
    }

    /// The sweep's bar.
    pub fn bar(&self) -> ProgressBar {
        self.sweep.clone()
    }

    /// The engine has returned: end the current phase's line.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(h) = self.after.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Phases {
    fn drop(&mut self) {
        self.stop();
    }
}
