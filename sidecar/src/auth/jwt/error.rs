//! Why a request's credentials were refused. The messages are PostgREST's, word for word where
//! PostgREST has one, so that clients and people who know PostgREST recognise them. `crate::http::error`
//! turns each into a 401 with its `PGRST30x` code and `WWW-Authenticate` header on REST;
//! `http::auth_api::error` into GoTrue's `bad_jwt` on `/auth/v1/`.

/// A refused credential. Every variant is the client's problem (401), never a server failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    // The token could not be decoded or its signature not verified (PGRST301).
    #[error("Empty JWT is sent in Authorization header")]
    EmptyToken,
    #[error("Expected 3 parts in JWT; got {0}")]
    WrongPartCount(usize),
    /// The header or payload is not base64url-encoded JSON.
    #[error("JWT couldn't be decoded")]
    Undecodable,
    /// `alg` is not one we accept; `none` lands here, as does any algorithm we have no key for.
    #[error("Wrong or unsupported encoding algorithm")]
    UnsupportedAlgorithm { alg: String },
    /// No configured key has the token's algorithm (and `kid`, when it names one).
    #[error("No suitable key or wrong key type")]
    NoSuitableKey { alg: String, kid: Option<String> },
    /// Keys of the right kind exist, but none verifies the signature.
    #[error("No suitable key or wrong key type")]
    BadSignature,
    /// An `Authorization` header with a scheme other than `Bearer`, or with bytes that are not text.
    #[error("The Authorization header must be of the form: Bearer <JWT>")]
    NotBearer,

    // The signature is good but the claims are refused (PGRST303).
    #[error("JWT expired")]
    Expired,
    #[error("JWT not yet valid")]
    NotYetValid,
    #[error("JWT issued at future")]
    IssuedInFuture,
    #[error("JWT not in audience")]
    NotInAudience,
    /// The payload is not a JSON object.
    #[error("Parsing claims failed")]
    ClaimsNotObject,
    #[error("The JWT '{0}' claim must be a number")]
    ClaimNotNumber(String),
    #[error("The JWT 'role' claim must be a string")]
    RoleNotString,
    /// The `role` claim names a role outside `--jwt-roles`.
    #[error("JWT role is not allowed")]
    RoleNotAllowed { role: String },

    /// No token, and anonymous requests are off (`anon` is not in `--jwt-roles`) (PGRST302).
    #[error("Anonymous access is disabled")]
    TokenRequired,
}
