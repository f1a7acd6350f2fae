//! Tokens: signing the project's API keys now; verifying request JWTs and sessions later.

pub mod keys;
