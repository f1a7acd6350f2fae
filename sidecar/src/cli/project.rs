//! The project folder as the Supabase CLI lays it out: `supabase/migrations/<version>_<name>.sql`
//! (the version is digits, a UTC timestamp `YYYYMMDDHHMMSS` for new files) and `supabase/seed.sql`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::CliError;

/// A project folder: the one holding `supabase/`.
#[derive(Clone, Debug)]
pub(crate) struct Project {
    root: PathBuf,
}

/// One migration file.
#[derive(Clone, Debug)]
pub(crate) struct Migration {
    pub(crate) version: String,
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) sql: String,
}

impl Migration {
    /// SHA-256 (hex) of the file's bytes: an applied migration whose file changed is reported.
    pub(crate) fn checksum(&self) -> String {
        hex(&Sha256::digest(self.sql.as_bytes()))
    }

    /// The file's path as shown to the user.
    pub(crate) fn display(&self) -> String {
        format!("supabase/migrations/{}", file_name(&self.path))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Project {
    pub(crate) fn new(workdir: Option<PathBuf>) -> Result<Project, CliError> {
        let root = match workdir {
            Some(dir) => dir,
            None => std::env::current_dir().map_err(|err| CliError::Io {
                what: "the current directory".into(),
                err,
            })?,
        };
        Ok(Project { root })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn supabase_dir(&self) -> PathBuf {
        self.root.join("supabase")
    }

    pub(crate) fn migrations_dir(&self) -> PathBuf {
        self.supabase_dir().join("migrations")
    }

    pub(crate) fn seed_path(&self) -> PathBuf {
        self.supabase_dir().join("seed.sql")
    }

    /// Whether the folder is a Supabase project (it has `supabase/`).
    pub(crate) fn is_supabase(&self) -> bool {
        self.supabase_dir().is_dir()
    }

    /// The migration files, ordered by version. Other files in the folder are ignored, as the
    /// Supabase CLI ignores them; two files with one version are an error.
    pub(crate) fn migrations(&self) -> Result<Vec<Migration>, CliError> {
        let dir = self.migrations_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => {
                return Err(CliError::Io {
                    what: dir.display().to_string(),
                    err,
                })
            }
        };
        let mut migrations = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|err| CliError::Io {
                    what: dir.display().to_string(),
                    err,
                })?
                .path();
            let Some((version, name)) = parse_file_name(&file_name(&path)) else {
                continue;
            };
            let sql = std::fs::read_to_string(&path).map_err(|err| CliError::Io {
                what: path.display().to_string(),
                err,
            })?;
            migrations.push(Migration {
                version,
                name,
                path,
                sql,
            });
        }
        migrations.sort_by(|a, b| a.version.cmp(&b.version).then(a.name.cmp(&b.name)));
        if let Some(pair) = migrations.windows(2).find(|w| w[0].version == w[1].version) {
            return Err(CliError::Input(format!(
                "two migrations have the version {}: {} and {}",
                pair[0].version,
                pair[0].display(),
                pair[1].display()
            )));
        }
        Ok(migrations)
    }

    /// Creates an empty migration file named after the current UTC time and `name`.
    pub(crate) fn new_migration(&self, name: &str) -> Result<PathBuf, CliError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(CliError::Input(format!(
                "a migration name is letters, digits, '_' and '-' only (got {name:?})"
            )));
        }
        let dir = self.migrations_dir();
        std::fs::create_dir_all(&dir).map_err(|err| CliError::Io {
            what: dir.display().to_string(),
            err,
        })?;
        let mut version = utc_timestamp(std::time::SystemTime::now());
        // Two files made within one second still get distinct, ordered versions.
        while self.migrations()?.iter().any(|m| m.version >= version) {
            version = (version.parse::<u64>().unwrap_or(0) + 1).to_string();
        }
        let path = dir.join(format!("{version}_{name}.sql"));
        std::fs::write(&path, "").map_err(|err| CliError::Io {
            what: path.display().to_string(),
            err,
        })?;
        Ok(path)
    }
}

/// `<digits>_<name>.sql` → (version, name), as the Supabase CLI matches migration files.
fn parse_file_name(file: &str) -> Option<(String, String)> {
    let stem = file.strip_suffix(".sql")?;
    let (version, name) = stem.split_once('_')?;
    (!version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()))
        .then(|| (version.to_owned(), name.to_owned()))
}

/// `YYYYMMDDHHMMSS` in UTC.
pub(crate) fn utc_timestamp(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn file_names_follow_the_supabase_cli() {
        assert_eq!(
            parse_file_name("20240101120000_create_notes.sql"),
            Some(("20240101120000".into(), "create_notes".into()))
        );
        assert_eq!(
            parse_file_name("00000000000000_schema.sql"),
            Some(("00000000000000".into(), "schema".into()))
        );
        assert_eq!(parse_file_name("readme.md"), None);
        assert_eq!(parse_file_name("v1_x.sql"), None);
        assert_eq!(parse_file_name("_x.sql"), None);
    }

    #[test]
    fn timestamps_are_utc_calendar_time() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "19700101000000");
        // 2026-12-06T17:30:05Z
        let t = UNIX_EPOCH + Duration::from_secs(1_796_578_205);
        assert_eq!(utc_timestamp(t), "20261206173005");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(1_709_208_000);
        assert_eq!(utc_timestamp(t), "20240229120000");
    }
}
