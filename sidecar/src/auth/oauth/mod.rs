//! OAuth and OpenID Connect providers (issue 15), the part built so far: an issuer's discovery
//! document, fetched when a flow first needs it and refreshed after a TTL (`discovery`). Not yet
//! built on it: `/authorize`, `/callback`, identities and `grant_type=id_token`.

pub mod discovery;
