//! Token verification: who is calling. The project's JWT secret and API keys (`keys`), the keys
//! that verify request JWTs (`keyset`), the keys that sign the auth API's tokens (`signing`),
//! verifying a token into a role and claims (`verify`), and a request's identity from its headers
//! (`identity`). Every refusal is a `TokenError` (`error`).

mod cache;
pub(crate) mod error;
pub(crate) mod identity;
pub mod keys;
pub(crate) mod keyset;
pub mod signing;
pub(crate) mod verify;

pub use error::TokenError;
pub use identity::Identity;
pub use verify::{Verified, Verifier, VerifierOptions};
