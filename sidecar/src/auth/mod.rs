//! Tokens: the project's API keys (`keys`), the keys that verify request JWTs (`keyset`), verifying
//! a token into a role and claims (`verify`), and a request's identity from its headers (`identity`).
//! The auth API's domain: `accounts` (sign-up, sessions, users) and `admin` over `store` (the `auth`
//! tables), with `password` (Argon2id), `tokens` (issuing), `ratelimit`, `mailer`, `input`
//! (checking what clients send), `settings` and `account_error`.

pub mod account_error;
pub mod accounts;
pub mod admin;
pub mod error;
pub mod identity;
pub mod input;
pub mod keys;
pub mod keyset;
pub mod mailer;
pub mod password;
pub mod ratelimit;
pub mod settings;
pub mod store;
pub mod tokens;
pub mod verify;

pub use error::AuthError;
pub use identity::Identity;
pub use verify::{Verified, Verifier, VerifierOptions};
