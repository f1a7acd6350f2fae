//! Password hashing: Argon2id (RFC 9106) with the parameters OWASP's password storage cheat sheet
//! recommends for Argon2id: 19 MiB of memory, 2 passes, 1 lane. On this project's 2-core test
//! machine one hash takes the time given in bench/README.md ("Auth: Argon2id cost"); a sign-in
//! costs one hash.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so they carry their own
//! parameters: raising the constants later does not break stored hashes. Verification compares the
//! computed output with the stored one in constant time (`password_hash::Output`'s `PartialEq` is
//! built on `subtle`), and an unknown email is checked against a dummy hash with the same
//! parameters, so that the answer and its timing do not tell whether an account exists.
//!
//! Hashing is CPU- and memory-heavy on purpose, so it runs on the blocking pool, at most
//! `max_concurrent` at a time: a flood of sign-ins queues instead of allocating 19 MiB per request.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Memory cost in KiB (19 MiB).
pub(crate) const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory.
pub(crate) const ITERATIONS: u32 = 2;
/// Lanes (parallelism).
pub(crate) const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the system random source failed: {0}")]
    Random(String),
    #[error("the password hashing task did not finish")]
    Task,
}

/// Hashes and verifies passwords; cheap to clone.
#[derive(Clone, Debug)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    dummy: Arc<OnceLock<String>>,
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Passwords::new(cores)
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC hash of `password` with a fresh 16-byte salt (blocking: call on the blocking pool).
pub(crate) fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|err| PasswordError::Random(err.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|err| PasswordError::Hash(err.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| PasswordError::Hash(err.to_string()))
}

/// Whether `password` matches `hash` (blocking): a PHC string, or a bcrypt hash (`$2a$`, `$2b$`,
/// `$2y$`) of a user imported from Supabase (GoTrue stores bcrypt). A malformed hash matches nothing.
pub(crate) fn verify_blocking(password: &str, hash: &str) -> bool {
    if is_bcrypt(hash) {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
}

/// Whether a stored hash should be replaced by a fresh Argon2id one after a successful sign-in:
/// imported bcrypt hashes are, once, so that every password ends up under the same scheme.
pub(crate) fn needs_rehash(hash: &str) -> bool {
    is_bcrypt(hash)
}

impl Passwords {
    pub fn new(max_concurrent: usize) -> Passwords {
        Passwords {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy: Arc::new(OnceLock::new()),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.blocking(move |_| hash_blocking(&password)).await?
    }

    /// Checks `password` against `hash`, or against the dummy hash when there is no account, which
    /// costs the same and never matches a real account.
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        let found = hash.is_some();
        let matched = self
            .blocking(move |dummy| match hash {
                Some(hash) => Ok(verify_blocking(&password, &hash)),
                None => {
                    let dummy = match dummy.get() {
                        Some(dummy) => dummy.clone(),
                        None => {
                            let made = hash_blocking("sluice: no such account")?;
                            dummy.get_or_init(|| made).clone()
                        }
                    };
                    Ok(verify_blocking(&password, &dummy))
                }
            })
            .await??;
        Ok(found && matched)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&OnceLock<String>) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Task)?;
        let dummy = Arc::clone(&self.dummy);
        tokio::task::spawn_blocking(move || work(&dummy))
            .await
            .map_err(|_| PasswordError::Task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_the_documented_parameters() {
        let hash = hash_blocking("correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking("correct horse", &hash));
        assert!(!verify_blocking("correct horsE", &hash));
        assert!(!verify_blocking("correct horse", "not a phc string"));
        // A fresh salt each time.
        assert_ne!(hash, hash_blocking("correct horse").unwrap());
    }

    #[test]
    fn bcrypt_hashes_from_supabase_verify_and_ask_for_a_rehash() {
        // pgcrypto's crypt('supabase-pw', gen_salt('bf')) writes $2a$ with cost 6.
        let hash = bcrypt::hash_with_result("supabase-pw", 6)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoA);
        assert!(hash.starts_with("$2a$06$"), "{hash}");
        assert!(verify_blocking("supabase-pw", &hash));
        assert!(!verify_blocking("supabase-pW", &hash));
        assert!(needs_rehash(&hash));
        assert!(!needs_rehash(&hash_blocking("x").unwrap()));
        assert!(!verify_blocking("supabase-pw", "$2a$06$broken"));
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let passwords = Passwords::new(2);
        assert!(!passwords
            .verify("sluice: no such account".into(), None)
            .await
            .unwrap());
        let hash = passwords.hash("pw-123456".into()).await.unwrap();
        assert!(passwords
            .verify("pw-123456".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!passwords.verify("nope".into(), Some(hash)).await.unwrap());
    }

    /// `cargo test -p sluice-sidecar --release argon2_cost -- --ignored --nocapture` prints the
    /// cost of one hash on this machine (the number in bench/README.md).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn argon2_cost() {
        let runs = 20;
        hash_blocking("warm-up").unwrap();
        let started = std::time::Instant::now();
        for _ in 0..runs {
            hash_blocking("a password of ordinary length").unwrap();
        }
        let per_hash = started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
        println!(
            "Argon2id m={MEMORY_KIB} KiB t={ITERATIONS} p={LANES}: {per_hash:.1} ms per hash ({runs} runs)"
        );
    }
}
