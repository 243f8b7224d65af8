//! An AWS authorization-details export (`aws iam get-account-authorization-details`) of any
//! size, read as a stream and analyzed in parts, so that memory stays near the size of the
//! export on disk and work spreads over the cores.
//!
//! The first part holds the managed policies and the groups (few, and needed by every user
//! and role); then the users and roles follow in parts of [`PART_SIZE`], each an
//! [`Inventory`] holding its own principals and inline policies beside the managed and group
//! policies they use (shared, not copied). Every question the analyzer asks of a principal
//! needs only that principal's policies, so each part is analyzed on its own, in parallel,
//! and dropped; what spans parts (the role-assumption graph, the review's sections) is
//! gathered from small per-principal summaries.

use crate::finding::Finding;
use crate::import::aws::{self, Assembly, Tables};
use crate::import::stream::{self, Survey};
use crate::model::{Inventory, PrincipalType};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// Users and roles per part.
pub const PART_SIZE: usize = 256;

/// Where an export's bytes are.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file, read twice and never held whole.
    File(PathBuf),
    /// Bytes already in memory (from Gatehouse's store or API).
    Bytes(Arc<[u8]>),
}

/// Why an export could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON (or stopped being JSON part way).
    #[error("{file}: $: not JSON: {message}")]
    Json {
        /// The file.
        file: String,
        /// The parser's message (with line and column).
        message: String,
    },
}

/// One part of an export: an inventory and the input problems found building it.
#[derive(Debug)]
pub struct Part {
    /// The part's principals and the policies they use.
    pub inventory: Inventory,
    /// Problems with the input (invalid documents, missing managed policies).
    pub problems: Vec<Finding>,
}

/// An authorization-details export, surveyed and ready to be read in parts.
#[derive(Debug)]
pub struct AwsExport {
    file: String,
    source: Source,
    tables: Tables,
    first: Part,
    principals: usize,
    part_size: usize,
    accounts: BTreeSet<String>,
    names: aws::Names,
    latest: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl Source {
    fn read(&self, file: &str) -> Result<Box<dyn Read + '_>, ExportError> {
        match self {
            Source::File(p) => {
                let f = std::fs::File::open(p).map_err(|source| ExportError::Read {
                    file: file.to_owned(),
                    source,
                })?;
                Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, f)))
            }
            Source::Bytes(b) => Ok(Box::new(&b[..])),
        }
    }

    /// Whether the input starts like a JSON object (the only shape an export has).
    fn is_object(&self, file: &str) -> Result<bool, ExportError> {
        let mut r = self.read(file)?;
        let mut buf = [0u8; 256];
        loop {
            let n = r.read(&mut buf).map_err(|source| ExportError::Read {
                file: file.to_owned(),
                source,
            })?;
            if n == 0 {
                return Ok(false);
            }
            if let Some(b) = buf[..n].iter().find(|b| !b.is_ascii_whitespace()) {
                return Ok(*b == b'{');
            }
        }
    }
}

/// Runs one pass of the streaming reader over the whole input, checking it ends cleanly.
fn pass<T>(
    file: &str,
    source: &Source,
    run: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::IoRead<Box<dyn Read + '_>>>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, ExportError> {
    let json = |e: serde_json::Error| {
        if e.is_io() {
            ExportError::Read {
                file: file.to_owned(),
                source: std::io::Error::other(e.to_string()),
            }
        } else {
            ExportError::Json {
                file: file.to_owned(),
                message: e.to_string(),
            }
        }
    };
    let mut de = serde_json::Deserializer::from_reader(source.read(file)?);
    let out = run(&mut de).map_err(json)?;
    de.end().map_err(json)?;
    Ok(out)
}

impl AwsExport {
    /// Surveys the input (the first pass): `Ok(None)` when it is not an
    /// authorization-details export (another format, for the whole-file importers).
    pub fn open(file: &str, source: Source) -> Result<Option<AwsExport>, ExportError> {
        if !source.is_object(file)? {
            return Ok(None);
        }
        let survey: Survey = pass(file, &source, |de| stream::survey(file, de))?;
        if !survey.is_export {
            return Ok(None);
        }
        let Survey {
            mut tables,
            groups,
            principals,
            accounts,
            names,
            latest,
            mut problems,
            ..
        } = survey;
        let mut assembly = Assembly::new(file, true);
        assembly.add_all_managed(&tables);
        for (i, g) in groups.iter().enumerate() {
            let e = aws::entry(file, PrincipalType::Group, i, g, &names, &mut problems);
            let name = e.principal.name.clone();
            let passed = assembly.add(&tables, e, &mut problems);
            tables.groups.insert(name, passed);
        }
        Ok(Some(AwsExport {
            file: file.to_owned(),
            source,
            tables,
            first: Part {
                inventory: assembly.finish(),
                problems,
            },
            principals,
            part_size: PART_SIZE,
            accounts,
            names,
            latest,
        }))
    }

    /// Reads an export held in memory; `Ok(None)` when it is not one.
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Option<AwsExport>, ExportError> {
        AwsExport::open(file, Source::Bytes(Arc::from(bytes)))
    }

    /// Reads users and roles in parts of `n` (at least one) instead of [`PART_SIZE`]: the
    /// answers do not depend on it (tests read exports in parts of one or two to hold the
    /// analysis to that).
    pub fn set_part_size(&mut self, n: usize) {
        self.part_size = n.max(1);
    }

    /// The file name used in locations.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// How many users and roles it holds.
    pub fn principals(&self) -> usize {
        self.principals
    }

    /// The accounts of its users, groups and roles.
    pub fn accounts(&self) -> &BTreeSet<String> {
        &self.accounts
    }

    /// The export's own "now": the latest creation or last-use date of any principal.
    pub fn now(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        self.latest
    }

    /// The first part: every managed policy and every group.
    pub fn first_part(&self) -> &Part {
        &self.first
    }

    /// Calls `f` on every part, the first part first, and returns the answers in order.
    /// Users and roles are read on another thread while `f` works on the part before;
    /// `progress` is told how many principals each part held.
    pub fn parts<R: Send>(
        &self,
        progress: &(dyn Fn(u64) + Sync),
        f: &(dyn Fn(&Part) -> R + Sync),
    ) -> Result<Vec<R>, ExportError> {
        let mut out = vec![f(&self.first)];
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Part>(2);
            let reader = scope.spawn(move || {
                let mut batch = Batch::new(&self.file, &self.names);
                pass(&self.file, &self.source, |de| {
                    stream::principals(de, &mut |kind, i, v| {
                        batch.add(&self.tables, kind, i, &v);
                        if batch.len == self.part_size {
                            // A closed channel means the consumer stopped: nothing to do.
                            let _ = tx.send(batch.take());
                        }
                    })
                })?;
                if batch.len > 0 {
                    let _ = tx.send(batch.take());
                }
                Ok::<(), ExportError>(())
            });
            for part in rx {
                out.push(f(&part));
                progress(part.inventory.aws_principals.len() as u64);
            }
            reader.join().unwrap_or_else(|_| {
                Err(ExportError::Json {
                    file: self.file.clone(),
                    message: "the reader stopped".into(),
                })
            })
        })?;
        Ok(out)
    }
}

/// The part being built by the reader.
struct Batch<'a> {
    file: &'a str,
    names: &'a aws::Names,
    assembly: Assembly,
    problems: Vec<Finding>,
    len: usize,
}

impl<'a> Batch<'a> {
    fn new(file: &'a str, names: &'a aws::Names) -> Batch<'a> {
        Batch {
            file,
            names,
            assembly: Assembly::new(file, false),
            problems: Vec::new(),
            len: 0,
        }
    }

    fn add(&mut self, tables: &Tables, kind: PrincipalType, index: usize, v: &serde_json::Value) {
        let e = aws::entry(self.file, kind, index, v, self.names, &mut self.problems);
        self.assembly.add(tables, e, &mut self.problems);
        self.len += 1;
    }

    fn take(&mut self) -> Part {
        let done = std::mem::replace(self, Batch::new(self.file, self.names));
        Part {
            inventory: done.assembly.finish(),
            problems: done.problems,
        }
    }
}
