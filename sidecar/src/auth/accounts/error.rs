//! `AccountError`: the one error of the accounts domain, for everything `/auth/v1/` can refuse or
//! fail at, independent of HTTP. `http::auth_api::error` maps each variant to GoTrue's status and
//! `error_code` in one place. The parts' own errors (store, password hashing, mail, issuing) are
//! only ever the cause of a server failure here: logged in full, shown to the client as a 500.

use super::mailer::MailError;
use super::password::PasswordError;
use super::ratelimit::Limited;
use super::sms::SmsError;
use super::store::StoreError;
use super::tokens::IssueError;
use crate::auth::jwt::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    // What the client sent.
    #[error("Could not parse request body as JSON: {0}")]
    BadJson(String),
    #[error("{0}")]
    Validation(&'static str),
    #[error("Unsupported provider: {0}")]
    UnsupportedProvider(String),
    /// `grant_type=id_token` for a provider with a well-known issuer that is not configured.
    #[error("Provider (issuer {0:?}) is not enabled")]
    ProviderDisabled(&'static str),
    /// Linking or unlinking identities by hand (`linkIdentity`, `unlinkIdentity`): GoTrue's answer
    /// while manual linking is off (`SLUICE_AUTH_MANUAL_LINKING_ENABLED`, GoTrue's
    /// `GOTRUE_SECURITY_MANUAL_LINKING_ENABLED`), its default.
    #[error("Manual linking is disabled")]
    ManualLinkingDisabled,
    /// `linkIdentity` of an identity that is already linked, to this user or another one.
    #[error("{0}")]
    IdentityAlreadyExists(&'static str),
    /// `unlinkIdentity` of an identity the caller does not have.
    #[error("Identity doesn't exist")]
    IdentityNotFound,
    #[error("identity_id must be an UUID")]
    IdentityIdNotUuid,
    #[error("User must have at least 1 identity after unlinking")]
    SingleIdentityNotDeletable,
    #[error("Unable to unlink identity due to email conflict")]
    EmailConflictIdentityNotDeletable,
    /// A user without an email (anonymous) linking an identity whose email the provider did not
    /// verify.
    #[error("Unverified email with {0}")]
    LinkedEmailNotVerified(String),
    /// An external provider failed, or what it (or the client) handed over did not check out.
    #[error(transparent)]
    OAuth(#[from] crate::auth::oauth::OAuthError),
    #[error("Unable to validate email address: invalid format")]
    InvalidEmail,
    #[error("Password should be at least {0} characters.")]
    WeakPassword(usize),

    // Who the client is.
    #[error("This endpoint requires a valid Bearer token")]
    NoAuthorization,
    /// The access token was refused by the verifier.
    #[error("invalid JWT: unable to parse or verify signature, {0}")]
    BadJwt(#[source] TokenError),
    /// A valid token that names no user (an API key, say), where a user's token is needed.
    #[error("invalid JWT: unable to parse or verify signature, missing sub claim")]
    NoUserInToken,
    #[error("User not allowed")]
    NotAdmin,

    // What the accounts domain refuses.
    #[error("Signups not allowed for this instance")]
    SignupDisabled,
    #[error("User already registered")]
    UserAlreadyExists,
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
    /// Sluice has no SAML single sign-on: GoTrue's answer when it is off.
    #[error("SAML 2.0 is disabled")]
    SamlDisabled,
    /// Sluice has no Web3 (wallet) sign-in: GoTrue's answer when it is off.
    #[error("Web3 provider is disabled")]
    Web3Disabled,
    /// A code or token that is wrong, used, replaced or expired: one answer for all.
    #[error("Token has expired or is invalid")]
    OtpInvalid,
    #[error("Signups not allowed for otp")]
    OtpDisabled,
    #[error("Anonymous sign-ins are disabled")]
    AnonymousDisabled,
    #[error("Invalid phone number format (E.164 required)")]
    InvalidPhone,
    #[error("A user with this email address has already been registered")]
    EmailExists,
    #[error("Phone number already registered by another user")]
    PhoneExists,
    #[error("Phone not confirmed")]
    PhoneNotConfirmed,
    /// `PUT /user` with a new password, without the nonce that SLUICE_AUTH_SECURE_PASSWORD_CHANGE
    /// asks of a session older than a day.
    #[error("Password update requires reauthentication")]
    ReauthenticationNeeded,
    /// A reauthentication nonce that is wrong, used or expired.
    #[error("Nonce has expired or is invalid")]
    ReauthenticationNotValid,
    #[error("Reauthentication requires the user to have an email or a phone number")]
    ReauthenticationNoContact,
    /// `GET /reauthenticate` before the address it would go to is confirmed (GoTrue's messages).
    #[error("Please verify your email first.")]
    ReauthenticationEmailUnconfirmed,
    #[error("Please verify your phone first.")]
    ReauthenticationPhoneUnconfirmed,
    #[error("invalid flow state, no valid flow state found")]
    FlowStateNotFound,
    #[error("invalid flow state, flow state has expired")]
    FlowStateExpired,
    #[error("code challenge does not match previously saved code verifier")]
    BadCodeVerifier,

    // MFA (`mfa`), with GoTrue's messages.
    #[error("A factor with this friendly name already exists for this user")]
    MfaFactorNameConflict,
    #[error("Maximum number of enrolled factors reached, unenroll to continue")]
    TooManyFactors,
    #[error("Factor not found")]
    MfaFactorNotFound,
    #[error("MFA factor with the provided challenge ID not found")]
    MfaChallengeNotFound,
    #[error("MFA challenge {0} has expired, verify against another challenge or create a new challenge.")]
    MfaChallengeExpired(uuid::Uuid),
    #[error("Invalid TOTP code entered")]
    MfaVerificationFailed,
    #[error("AAL2 required to unenroll verified factor")]
    InsufficientAal,
    #[error("factor_type needs to be totp")]
    UnsupportedFactorType,

    /// The custom access token hook failed or refused (`hooks`): its status and message, shown
    /// to the client as GoTrue shows them.
    #[error("{message}")]
    Hook { status: u16, message: String },

    // Server failures.
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Sms(#[from] SmsError),
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
