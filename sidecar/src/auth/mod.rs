//! Auth is two features, each a module with one error enum:
//! - `jwt`: who is calling. Verifies the JWT every request carries into an `Identity` (a role and
//!   the claims Postgres sees), with the project's keys. Used by every endpoint; refusals are
//!   `TokenError`s (PostgREST's `PGRST30x` on REST, `bad_jwt` on `/auth/v1/`).
//! - `accounts`: the GoTrue accounts domain behind `/auth/v1/`: users, passwords, sessions and
//!   their tokens, mail links, rate limits and admin operations over the `auth` tables. Refusals
//!   are `AccountError`s, which `http::auth_api::error` turns into GoTrue's error shape.
//!
//! - `oauth`: OpenID Connect providers; so far only their discovery documents (issue 15).
//!
//! `accounts` builds on `jwt` (it signs tokens with the same secret and reads the caller from a
//! verified token); `jwt` knows nothing of accounts.

pub mod accounts;
pub mod jwt;
pub mod oauth;

pub use jwt::{Identity, TokenError, Verified, Verifier, VerifierOptions};
