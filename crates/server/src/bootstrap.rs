//! First start: the root credentials and the default account.
//!
//! Root credentials come from `GATEHOUSE_ROOT_ACCESS_KEY_ID` and
//! `GATEHOUSE_ROOT_SECRET_ACCESS_KEY`; when unset, the first start generates them and writes
//! them to `root-credentials` (mode 0600) in the data directory, where later starts find
//! them. The secret is never logged.

use gatehouse_auth::Secret;
use std::path::{Path, PathBuf};

/// The file holding generated root credentials.
pub const ROOT_CREDENTIALS_FILE: &str = "root-credentials";

/// Why bootstrap failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The credentials file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The credentials file is not in the expected form.
    #[error("{0}: not a Gatehouse root credentials file")]
    Malformed(PathBuf),
}

/// Root credentials, and where they came from.
#[derive(Debug, Clone)]
pub struct RootCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret.
    pub secret: Secret,
    /// The file they were read from or written to (`None` when from the environment).
    pub file: Option<PathBuf>,
    /// True when this start generated them.
    pub generated: bool,
}

/// Loads the root credentials from the environment, the data directory, or creates them.
pub fn root_credentials(data_dir: &Path) -> Result<RootCredentials, BootstrapError> {
    if let (Ok(id), Ok(secret)) = (
        std::env::var("GATEHOUSE_ROOT_ACCESS_KEY_ID"),
        std::env::var("GATEHOUSE_ROOT_SECRET_ACCESS_KEY"),
    ) && !id.is_empty()
        && !secret.is_empty()
    {
        return Ok(RootCredentials {
            access_key_id: id,
            secret: Secret::from_string(secret),
            file: None,
            generated: false,
        });
    }
    let path = data_dir.join(ROOT_CREDENTIALS_FILE);
    let io = |source| BootstrapError::Io {
        path: path.clone(),
        source,
    };
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(name)?
                        .trim()
                        .strip_prefix('=')
                        .map(str::trim)
                })
                .map(str::to_owned)
        };
        let (Some(id), Some(secret)) = (field("aws_access_key_id"), field("aws_secret_access_key"))
        else {
            return Err(BootstrapError::Malformed(path));
        };
        return Ok(RootCredentials {
            access_key_id: id,
            secret: Secret::from_string(secret),
            file: Some(path),
            generated: false,
        });
    }
    let access_key_id = gatehouse_auth::session::generate_access_key_id("AKIA");
    let secret = gatehouse_auth::session::generate_secret_access_key();
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let body = format!(
        "# Gatehouse root credentials (bootstrap only: create an admin user, then stop using these)\n[gatehouse-root]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {}\n",
        secret.expose_str().unwrap_or_default()
    );
    write_private(&path, body.as_bytes()).map_err(io)?;
    Ok(RootCredentials {
        access_key_id,
        secret,
        file: Some(path),
        generated: true,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reads_back() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        let first = root_credentials(dir.path());
        let first = first.ok();
        let second = root_credentials(dir.path()).ok();
        assert!(first.as_ref().is_some_and(|c| c.generated));
        assert_eq!(
            first.map(|c| c.access_key_id),
            second.as_ref().map(|c| c.access_key_id.clone())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(ROOT_CREDENTIALS_FILE))
                .map(|m| m.permissions().mode() & 0o777)
                .ok();
            assert_eq!(mode, Some(0o600));
        }
    }
}
