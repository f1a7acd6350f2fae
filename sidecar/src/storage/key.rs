//! Which bucket ids and object names are accepted. Names become backend keys part by part, so the
//! rules here are what keeps every key inside the backend's root: no empty, `.` or `..` segment, no
//! absolute name, no backslash, no control character.

use super::StorageError;

/// Longest object name, in bytes (Supabase's limit).
const MAX_NAME_BYTES: usize = 1024;
/// Longest bucket id (storage-js's own check).
const MAX_BUCKET_BYTES: usize = 100;

/// A bucket id: 1..=100 characters of storage-js's set (`isValidBucketName`), not `.` or `..`.
pub fn check_bucket(id: &str) -> Result<(), StorageError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_!.*'() &$@=;:+,?-".contains(c);
    let valid = !id.is_empty()
        && id.len() <= MAX_BUCKET_BYTES
        && id.trim() == id
        && id != "."
        && id != ".."
        && id.chars().all(allowed);
    if valid {
        Ok(())
    } else {
        Err(StorageError::InvalidBucketName)
    }
}

/// An object name: segments separated by `/`, none empty, `.` or `..`; no control characters or
/// backslashes; at most 1024 bytes.
pub fn check_name(name: &str) -> Result<(), StorageError> {
    let invalid = || StorageError::InvalidKey(name.to_owned());
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(invalid());
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(invalid());
    }
    if name
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(invalid());
    }
    Ok(())
}

/// A listing prefix: like a name, but may be empty and may end with `/`.
pub fn check_prefix(prefix: &str) -> Result<(), StorageError> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        return if prefix.is_empty() {
            Ok(())
        } else {
            Err(StorageError::InvalidKey(prefix.to_owned()))
        };
    }
    check_name(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_root_are_refused() {
        for name in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            ".",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a\u{0}b",
            "a\nb",
            "a\u{7f}b",
        ] {
            assert!(check_name(name).is_err(), "{name:?} was accepted");
        }
        for name in [
            "a",
            "a/b/c.png",
            "folder/..x",
            "ünïcode/名前.txt",
            "with space.txt",
            "a.b",
        ] {
            assert!(check_name(name).is_ok(), "{name:?} was refused");
        }
        assert!(check_name(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn bucket_ids_follow_storage_js() {
        for id in ["avatars", "my-bucket_1", "a.b"] {
            assert!(check_bucket(id).is_ok(), "{id:?}");
        }
        for id in ["", ".", "..", "a/b", "a\\b", " a", "é"] {
            assert!(check_bucket(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn prefixes_may_be_empty_or_end_with_a_slash() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("a/b/").is_ok());
        assert!(check_prefix("a/b").is_ok());
        assert!(check_prefix("/").is_err());
        assert!(check_prefix("../").is_err());
    }
}
