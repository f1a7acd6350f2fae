//! Why an auth request was refused, independent of HTTP; `http::auth_api::error` maps each to
//! GoTrue's status and `error_code`.

use super::mailer::MailError;
use super::password::PasswordError;
use super::ratelimit::Limited;
use super::store::StoreError;
use super::tokens::TokenError;

/// Why an auth request was refused. The HTTP status and GoTrue error code of each are in
/// `http::auth_api::error`.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("Signups not allowed for this instance")]
    SignupDisabled,
    #[error("User already registered")]
    UserAlreadyExists,
    #[error("Password should be at least {0} characters.")]
    WeakPassword(usize),
    #[error("Unable to validate email address: invalid format")]
    InvalidEmail,
    #[error("{0}")]
    Validation(&'static str),
    /// Unknown email or wrong password: one answer for both.
    #[error("Invalid login credentials")]
    InvalidCredentials,
    #[error("Email not confirmed")]
    EmailNotConfirmed,
    #[error("User is banned")]
    UserBanned,
    #[error("Invalid Refresh Token: Refresh Token Not Found")]
    RefreshTokenNotFound,
    #[error("Invalid Refresh Token: Already Used")]
    RefreshTokenAlreadyUsed,
    #[error("Request rate limit reached")]
    RateLimited(Limited),
    #[error("Session from session_id claim in JWT does not exist")]
    SessionNotFound,
    #[error("User from sub claim in JWT does not exist")]
    UserFromTokenNotFound,
    #[error("User not found")]
    UserNotFound,
    #[error("Email link is invalid or has expired")]
    OtpExpired,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

impl From<StoreError> for AccountError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => AccountError::UserAlreadyExists,
            err => AccountError::Store(err),
        }
    }
}

impl From<Limited> for AccountError {
    fn from(limited: Limited) -> Self {
        AccountError::RateLimited(limited)
    }
}
