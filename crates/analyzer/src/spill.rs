//! Findings kept on disk while an organization's exports are read. A scan's findings grow
//! with the organization (about 170 per account of the corpus), and held in memory they sat
//! beside everything else an export's reading keeps until its last part (the managed
//! policies, the role graph's nodes): peak memory was their sum. Written to an unnamed
//! temporary file part by part and read back once the exports and the graph are done, they
//! take their turn instead.
//!
//! A finding is its rule, severity, message and location (the rest comes from the rule
//! catalogue), so that is what a line holds. Nothing is lost when the disk fails: a part
//! that cannot be written stays in memory, and a file that cannot be read back is reported
//! as a critical finding naming how many findings it held.

use crate::finding::{Finding, Location, Severity, rule_by_id};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};

/// A finding as a line of the file.
#[derive(Serialize)]
struct Line<'a> {
    rule: &'a str,
    severity: Severity,
    message: &'a str,
    location: &'a Location,
}

/// A line read back.
#[derive(Deserialize)]
struct Stored {
    rule: String,
    severity: Severity,
    message: String,
    location: Location,
}

/// A point to go back to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    written: u64,
    lines: usize,
    held: usize,
}

/// Findings on their way to the report.
#[derive(Debug)]
pub(crate) struct Spill {
    /// The temporary file (deleted by the system once closed), while it works.
    file: Option<File>,
    /// Bytes of complete lines written.
    written: u64,
    /// Findings on lines.
    lines: usize,
    /// Findings kept in memory: no temporary file, a write that failed, or a rule outside
    /// the catalogue (it could not be rebuilt from its id).
    held: Vec<Finding>,
}

impl Default for Spill {
    fn default() -> Spill {
        Spill {
            file: tempfile::tempfile().ok(),
            written: 0,
            lines: 0,
            held: Vec::new(),
        }
    }
}

impl Spill {
    /// Adds one part's findings: written as one block, or held when they cannot be.
    pub fn add(&mut self, findings: Vec<Finding>) {
        let Some(file) = self.file.as_mut() else {
            self.held.extend(findings);
            return;
        };
        let (lines, unknown): (Vec<Finding>, Vec<Finding>) = findings
            .into_iter()
            .partition(|f| rule_by_id(f.rule).is_some());
        self.held.extend(unknown);
        let mut block = Vec::new();
        let encoded = lines.iter().try_for_each(|f| {
            let line = Line {
                rule: f.rule,
                severity: f.severity,
                message: &f.message,
                location: &f.location,
            };
            serde_json::to_writer(&mut block, &line)?;
            block.push(b'\n');
            Ok::<(), serde_json::Error>(())
        });
        match encoded
            .map_err(std::io::Error::from)
            .and_then(|()| file.write_all(&block))
        {
            Ok(()) => {
                self.written += block.len() as u64;
                self.lines += lines.len();
            }
            Err(_) => {
                // What reached the file of this block is cut off again, the part's findings
                // are held, and the file takes no more.
                let _ = file.set_len(self.written);
                self.held.extend(lines);
                self.file = None;
            }
        }
    }

    /// Where the spill stands, to go back to with [`Spill::rollback`].
    pub fn mark(&self) -> Mark {
        Mark {
            written: self.written,
            lines: self.lines,
            held: self.held.len(),
        }
    }

    /// Forgets what was added since `mark` (an export that failed part way, read again
    /// whole): the file is cut back to it.
    pub fn rollback(&mut self, mark: Mark) {
        self.held.truncate(mark.held);
        self.lines = mark.lines;
        self.written = mark.written;
        if let Some(file) = self.file.as_mut()
            && (file.set_len(mark.written).is_err() || file.seek(SeekFrom::End(0)).is_err())
        {
            // Lines past the mark may remain: nothing is read back from a file in doubt.
            self.file = None;
            self.held.push(
                Finding::new(
                    "GH-IN-001",
                    format!(
                        "{} findings were lost: their temporary file could not be cut back",
                        mark.lines
                    ),
                    Location::at("(scan)", "$"),
                )
                .with_severity(Severity::Critical),
            );
        }
    }

    /// Every finding added, in no particular order.
    pub fn finish(self) -> Vec<Finding> {
        let mut out = self.held;
        let Some(mut file) = self.file else {
            return out;
        };
        let mut back = Vec::with_capacity(self.lines);
        let read = file.seek(SeekFrom::Start(0)).and_then(|_| {
            let mut r = BufReader::new(file.take(self.written));
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf)? > 0 {
                back.extend(parse(&buf));
                buf.clear();
            }
            Ok(())
        });
        let lost = self.lines.saturating_sub(back.len());
        let why = match read {
            Err(e) => Some(e.to_string()),
            Ok(()) if lost > 0 => Some("lines did not parse".to_owned()),
            Ok(()) => None,
        };
        if let Some(why) = why {
            out.push(
                Finding::new(
                    "GH-IN-001",
                    format!(
                        "{lost} findings were lost: their temporary file could not be read back ({why})"
                    ),
                    Location::at("(scan)", "$"),
                )
                .with_severity(Severity::Critical),
            );
        }
        out.reserve_exact(back.len());
        out.extend(back);
        out
    }
}

/// The finding of one line (`None` when it does not parse).
fn parse(line: &[u8]) -> Option<Finding> {
    let s: Stored = serde_json::from_slice(line).ok()?;
    let rule = rule_by_id(&s.rule)?;
    Some(Finding::new(rule.id, s.message, s.location).with_severity(s.severity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Finding> {
        let mut loc = Location::at("org.json", "$.RoleDetailList[3]");
        loc.entity = Some("role r".into());
        loc.statement = Some("#0".into());
        vec![
            Finding::new("GH-OP-001", "admin", loc.clone()),
            Finding::new("GH-PE-001", "escalates", loc).with_severity(Severity::Low),
            // Outside the catalogue: held, not written.
            Finding::new("GH-XX-999", "unknown rule", Location::default()),
        ]
    }

    #[test]
    fn findings_come_back_as_they_went_in() {
        let mut s = Spill::default();
        assert!(s.file.is_some(), "no temporary file here");
        s.add(sample());
        s.add(sample());
        assert_eq!(s.lines, 4);
        assert_eq!(s.held.len(), 2);
        let mut back = s.finish();
        let mut want = [sample(), sample()].concat();
        crate::sort(&mut back);
        crate::sort(&mut want);
        assert_eq!(back, want);
    }

    #[test]
    fn a_rollback_forgets_what_came_after_the_mark() {
        let mut s = Spill::default();
        s.add(sample());
        let mark = s.mark();
        s.add(sample());
        s.rollback(mark);
        s.add(sample()[..1].to_vec());
        let mut back = s.finish();
        let mut want = sample();
        want.push(sample().remove(0));
        crate::sort(&mut back);
        crate::sort(&mut want);
        assert_eq!(back, want);
    }

    #[test]
    fn without_a_file_findings_are_held() {
        let mut s = Spill {
            file: None,
            ..Spill::default()
        };
        s.add(sample());
        assert_eq!(s.finish().len(), 3);
    }
}
