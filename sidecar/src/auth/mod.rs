//! Tokens: the project's API keys (`keys`), the keys that verify request JWTs (`keyset`), verifying
//! a token into a role and claims (`verify`), and a request's identity from its headers (`identity`).

pub mod error;
pub mod identity;
pub mod keys;
pub mod keyset;
pub mod verify;

pub use error::AuthError;
pub use identity::Identity;
pub use verify::{Verified, Verifier, VerifierOptions};
