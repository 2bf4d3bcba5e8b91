//! Progress of the long one-shot commands (`audit verify`, `projections rebuild`): a bar per
//! part on a terminal, and off one a plain line every tenth of the way, so logs of a scheduled
//! run still show it moving.

use std::io::IsTerminal;

pub struct Progress {
    verb: &'static str,
    bar: Option<indicatif::ProgressBar>,
    part: Option<String>,
    tenth: u64,
}

impl Progress {
    /// `verb` starts each plain line: `<verb> <part>: <done> of <total> messages`.
    pub fn new(verb: &'static str) -> Progress {
        Progress {
            verb,
            bar: None,
            part: None,
            tenth: 0,
        }
    }

    /// `done` of `total` messages of `part` (a stream, a projection) are through.
    pub fn update(&mut self, part: &str, done: u64, total: u64) {
        if self.part.as_deref() != Some(part) {
            self.finish();
            self.part = Some(part.to_owned());
            self.tenth = 0;
            if std::io::stderr().is_terminal() {
                let bar = indicatif::ProgressBar::new(total);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(&format!(
                        "{part} {{bar:40}} {{pos}}/{{len}} ({{per_sec}}, {{eta}} left)"
                    ))
                    .expect("a valid template"),
                );
                self.bar = Some(bar);
            }
        }
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let tenth = done * 10 / total.max(1);
                if tenth > self.tenth {
                    eprintln!("{} {part}: {done} of {total} messages", self.verb);
                    self.tenth = tenth;
                }
            }
        }
    }

    /// Clears the bar, if there is one.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
