//! OAuth and OpenID Connect providers (issue 15): sign-in with GitHub, Google or any OpenID
//! Connect issuer, as GoTrue's `/authorize`, `/callback` and `grant_type=id_token` do.
//!
//! - `providers`: their configuration (`SLUICE_AUTH_EXTERNAL_<NAME>_*`).
//! - `discovery`: an issuer's discovery document, fetched when a flow first needs it and
//!   refreshed after a TTL.
//! - here: the `state` of a flow (signed with the provider's client secret and bound to the
//!   browser by a cookie nonce), the provider's authorization URL, the code-for-token exchange,
//!   and the checked user: an ID token verified against the issuer's JWKS (signature, issuer,
//!   audience, expiry, nonce) completed by the userinfo endpoint, or GitHub's user API.
//!
//! Finding or creating the user behind an account is the accounts domain's (`Accounts::external`).

pub mod discovery;
pub mod providers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use discovery::Discovery;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
pub use providers::{Kind, Provider, Providers};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How long a browser may take between `/authorize` and `/callback`.
pub const FLOW_VALIDITY: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The provider could not be reached or answered unexpectedly.
    #[error("{0}")]
    Provider(String),
    /// What the provider (or the client) handed over did not check out.
    #[error("{0}")]
    Invalid(String),
}

/// The account at a provider, as checked.
#[derive(Debug, Clone)]
pub struct ExternalUser {
    pub provider: String,
    pub provider_id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// GoTrue's identity data: the provider's claims plus `sub`, `iss`, `email`, `email_verified`.
    pub claims: Value,
    /// The provider's own tokens (GoTrue's `provider_token`, `provider_refresh_token`).
    pub provider_token: Option<String>,
    pub provider_refresh_token: Option<String>,
}

/// What the `state` of a flow carries back to `/callback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowState {
    /// The provider.
    pub p: String,
    /// Where the browser goes at the end (already checked against the allow-list).
    pub r: String,
    /// The PKCE flow state, when the client started one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f: Option<String>,
    /// SHA-256 of the browser's cookie nonce; also the OpenID Connect `nonce`.
    pub n: String,
    /// Expiry, seconds since the epoch.
    pub e: u64,
    /// Manual linking (`linkIdentity`): the user the identity is added to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l: Option<String>,
}

/// A manual-linking flow before the browser reaches `/authorize`: `GET /user/identities/authorize`
/// (called with the user's access token, often not by the browser itself) answers with a URL of
/// `/authorize` carrying this ticket, signed like a state; the browser that follows it gets the
/// cookie nonce there, so the flow is bound to that browser as a sign-in flow is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkTicket {
    /// The provider.
    pub p: String,
    /// Where the browser goes at the end (already checked against the allow-list).
    pub r: String,
    /// The PKCE flow state, when the client started one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f: Option<String>,
    /// The user the identity is added to.
    pub u: String,
    /// Expiry, seconds since the epoch.
    pub e: u64,
}

/// How long an issuer's keys are used before they are fetched again.
const JWKS_TTL: Duration = Duration::from_secs(600);
/// A token signed by a key not in the cached set fetches the set again, at most this often (a new
/// key after a rotation is found at once; tokens with made-up key ids do not hammer the issuer).
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(30);

type KeyCache = Mutex<HashMap<String, (Instant, Arc<JwkSet>)>>;

#[derive(Debug)]
pub struct OAuth {
    pub providers: Providers,
    discovery: Discovery,
    http: reqwest::Client,
    /// The issuers' JWKS by URL, with when each was fetched.
    jwks: KeyCache,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// SHA-256 of a cookie nonce, hex: the value the state and the ID token carry.
pub fn nonce_hash(cookie: &str) -> String {
    Sha256::digest(cookie.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a signed value is, so that one kind can never pass for the other.
const STATE_DOMAIN: &[u8] = b"sluice-oauth-state.";
const TICKET_DOMAIN: &[u8] = b"sluice-oauth-link-ticket.";

fn mac(secret: &str, domain: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(domain);
    mac.update(payload.as_bytes());
    mac
}

/// `payload.tag`: the JSON of `value`, base64url, and its HMAC under `secret` in `domain`.
fn sign<T: Serialize>(secret: &str, domain: &[u8], value: &T) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default());
    let tag = mac(secret, domain, &payload).finalize().into_bytes();
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
}

impl OAuth {
    pub fn new(providers: Providers) -> OAuth {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        OAuth {
            providers,
            discovery: Discovery::new(http.clone(), Duration::from_secs(3600)),
            http,
            jwks: Mutex::new(HashMap::new()),
        }
    }

    /// The providers of the environment; a misconfigured one is logged and left out.
    pub fn from_env(external_url: &str) -> OAuth {
        let providers =
            Providers::from_vars(std::env::vars(), external_url).unwrap_or_else(|err| {
                tracing::error!("auth: external providers not configured: {err}");
                Providers::default()
            });
        OAuth::new(providers)
    }

    /// `state` for a flow: the flow's data and an HMAC of it keyed by the provider's secret.
    pub fn sign_state(&self, provider: &Provider, state: &FlowState) -> String {
        sign(&provider.secret, STATE_DOMAIN, state)
    }

    /// A manual-linking ticket, signed with the provider's client secret.
    pub fn sign_ticket(&self, provider: &Provider, ticket: &LinkTicket) -> String {
        sign(&provider.secret, TICKET_DOMAIN, ticket)
    }

    /// The ticket this server signed, unexpired.
    pub fn open_ticket(&self, ticket: &str) -> Result<LinkTicket, OAuthError> {
        let bad = || OAuthError::Invalid("invalid identity linking request".into());
        let (payload, tag) = ticket.split_once('.').ok_or_else(bad)?;
        let opened: LinkTicket = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(bad)?;
        let provider = self.providers.get(&opened.p).map_err(|_| bad())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
        mac(&provider.secret, TICKET_DOMAIN, payload)
            .verify_slice(&tag)
            .map_err(|_| bad())?;
        if opened.e < now_secs() {
            return Err(OAuthError::Invalid(
                "identity linking request has expired".into(),
            ));
        }
        Ok(opened)
    }

    /// The flow of a `state` this server signed, unexpired, whose nonce is the cookie's.
    pub fn open_state(&self, state: &str, cookie: Option<&str>) -> Result<FlowState, OAuthError> {
        let bad = || OAuthError::Invalid("OAuth callback with invalid state".into());
        let (payload, tag) = state.split_once('.').ok_or_else(bad)?;
        let flow: FlowState = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(bad)?;
        let provider = self.providers.get(&flow.p).map_err(|_| bad())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
        mac(&provider.secret, STATE_DOMAIN, payload)
            .verify_slice(&tag)
            .map_err(|_| bad())?;
        if flow.e < now_secs() {
            return Err(OAuthError::Invalid("OAuth state has expired".into()));
        }
        let cookie = cookie.ok_or_else(bad)?;
        let hash = nonce_hash(cookie);
        if !crate::auth::accounts::flow_state::constant_time_eq(hash.as_bytes(), flow.n.as_bytes())
        {
            return Err(bad());
        }
        Ok(flow)
    }

    /// The provider's authorization endpoint with the request: `response_type=code`, the scopes,
    /// `state` and (OpenID Connect) `nonce`.
    pub async fn authorization_url(
        &self,
        provider: &Provider,
        state: &str,
        nonce: &str,
        extra_scopes: Option<&str>,
    ) -> Result<String, OAuthError> {
        let (endpoint, scope) = match &provider.kind {
            Kind::Oidc { issuer } => (
                self.metadata(issuer).await?.authorization_endpoint.clone(),
                "openid email profile",
            ),
            Kind::Github { web, .. } => (format!("{web}/login/oauth/authorize"), "user:email"),
        };
        let mut scope = scope.to_owned();
        for extra in extra_scopes.unwrap_or_default().split([' ', ',']) {
            if !extra.is_empty() && !scope.split(' ').any(|s| s == extra) {
                scope.push(' ');
                scope.push_str(extra);
            }
        }
        let mut url = reqwest::Url::parse(&endpoint)
            .map_err(|err| OAuthError::Provider(format!("bad authorization endpoint: {err}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &provider.client_id)
                .append_pair("redirect_uri", &provider.redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &scope)
                .append_pair("state", state);
            if matches!(provider.kind, Kind::Oidc { .. }) {
                query.append_pair("nonce", nonce);
            }
        }
        Ok(url.into())
    }

    /// The JWKS at `uri`: cached for `JWKS_TTL`, fetched again sooner when it lacks `kid`.
    async fn keys(&self, uri: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, OAuthError> {
        let cached = {
            let cache = self.jwks.lock().unwrap_or_else(|p| p.into_inner());
            cache.get(uri).cloned()
        };
        if let Some((fetched, keys)) = &cached {
            let knows = kid.is_none_or(|kid| keys.find(kid).is_some());
            let age = fetched.elapsed();
            if age < JWKS_TTL && (knows || age < JWKS_MIN_REFRESH) {
                return Ok(Arc::clone(keys));
            }
        }
        let keys: JwkSet = serde_json::from_value(json_of(self.http.get(uri), "JWKS").await?)
            .map_err(|err| OAuthError::Provider(format!("bad JWKS: {err}")))?;
        let keys = Arc::new(keys);
        self.jwks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uri.to_owned(), (Instant::now(), Arc::clone(&keys)));
        Ok(keys)
    }

    async fn metadata(&self, issuer: &str) -> Result<Arc<discovery::ProviderMetadata>, OAuthError> {
        self.discovery
            .metadata(issuer)
            .await
            .map_err(|err| OAuthError::Provider(err.to_string()))
    }

    /// `/callback`: the code traded for the provider's tokens, and the user they show.
    pub async fn exchange(
        &self,
        provider: &Provider,
        code: &str,
        nonce: &str,
    ) -> Result<ExternalUser, OAuthError> {
        match &provider.kind {
            Kind::Oidc { issuer } => {
                let metadata = self.metadata(issuer).await?;
                let form = [
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", provider.redirect_uri.as_str()),
                ];
                let request = self
                    .http
                    .post(&metadata.token_endpoint)
                    .basic_auth(&provider.client_id, Some(&provider.secret))
                    .form(&form);
                let tokens = json_of(request, "token endpoint").await?;
                let id_token = tokens["id_token"]
                    .as_str()
                    .ok_or_else(|| OAuthError::Invalid("the provider sent no ID token".into()))?;
                let access_token = tokens["access_token"].as_str().map(str::to_owned);
                let mut user = self
                    .verify_id_token(provider, id_token, Some(nonce))
                    .await?;
                if let (Some(endpoint), Some(access)) = (&metadata.userinfo_endpoint, &access_token)
                {
                    let info =
                        json_of(self.http.get(endpoint).bearer_auth(access), "userinfo").await?;
                    if info["sub"].as_str() != Some(user.provider_id.as_str()) {
                        return Err(OAuthError::Invalid(
                            "userinfo names another subject than the ID token".into(),
                        ));
                    }
                    merge_claims(&mut user, &info);
                }
                user.provider_token = access_token;
                user.provider_refresh_token = tokens["refresh_token"].as_str().map(str::to_owned);
                Ok(user)
            }
            Kind::Github { web, api } => {
                let form = [
                    ("client_id", provider.client_id.as_str()),
                    ("client_secret", provider.secret.as_str()),
                    ("code", code),
                    ("redirect_uri", provider.redirect_uri.as_str()),
                ];
                let request = self
                    .http
                    .post(format!("{web}/login/oauth/access_token"))
                    .header(reqwest::header::ACCEPT, "application/json")
                    .form(&form);
                let tokens = json_of(request, "token endpoint").await?;
                let access = tokens["access_token"].as_str().ok_or_else(|| {
                    OAuthError::Invalid(format!(
                        "the provider sent no access token: {}",
                        tokens["error_description"].as_str().unwrap_or("no reason")
                    ))
                })?;
                let get = |path: &str| {
                    self.http
                        .get(format!("{api}{path}"))
                        .bearer_auth(access)
                        .header(reqwest::header::USER_AGENT, "sluice")
                        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                };
                let me = json_of(get("/user"), "user API").await?;
                let emails = json_of(get("/user/emails"), "user API").await?;
                let primary = emails
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["primary"].as_bool() == Some(true));
                let id = match &me["id"] {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => return Err(OAuthError::Invalid("GitHub sent no user id".into())),
                };
                let email = primary.and_then(|e| e["email"].as_str()).map(str::to_owned);
                let verified = primary.and_then(|e| e["verified"].as_bool()) == Some(true);
                let claims = json!({
                    "iss": api, "sub": id, "provider_id": id,
                    "name": me["name"], "full_name": me["name"],
                    "user_name": me["login"], "preferred_username": me["login"],
                    "avatar_url": me["avatar_url"], "picture": me["avatar_url"],
                    "email": email, "email_verified": verified,
                });
                Ok(ExternalUser {
                    provider: provider.name.clone(),
                    provider_id: id,
                    email,
                    email_verified: verified,
                    claims,
                    provider_token: Some(access.to_owned()),
                    provider_refresh_token: tokens["refresh_token"].as_str().map(str::to_owned),
                })
            }
        }
    }

    /// An ID token of `provider`'s issuer: signed by a key of its JWKS with an asymmetric
    /// algorithm, for this client, unexpired, and (when one is expected) with `nonce`, compared
    /// as sent or as its SHA-256 (supabase-js's `signInWithIdToken` passes the raw nonce whose
    /// hash went to the provider).
    pub async fn verify_id_token(
        &self,
        provider: &Provider,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<ExternalUser, OAuthError> {
        let Kind::Oidc { issuer } = &provider.kind else {
            return Err(OAuthError::Invalid(format!(
                "{} does not issue ID tokens",
                provider.name
            )));
        };
        let invalid = |what: &str| OAuthError::Invalid(format!("invalid ID token: {what}"));
        let header = jsonwebtoken::decode_header(token).map_err(|err| invalid(&err.to_string()))?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(invalid("symmetric signatures are not accepted"));
        }
        let metadata = self.metadata(issuer).await?;
        let keys = self.keys(&metadata.jwks_uri, header.kid.as_deref()).await?;
        let jwk = match &header.kid {
            Some(kid) => keys.find(kid),
            None => keys.keys.first(),
        }
        .ok_or_else(|| invalid("signed by a key the issuer does not publish"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|err| invalid(&err.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&provider.client_id]);
        validation.set_issuer(&[&metadata.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|err| invalid(&err.to_string()))?
            .claims;
        if let Some(expected) = nonce {
            let found = claims["nonce"].as_str().unwrap_or_default();
            let hashed = nonce_hash(expected);
            if found != expected && found != hashed {
                return Err(invalid("nonce mismatch"));
            }
        }
        let sub = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("no subject"))?
            .to_owned();
        let mut user = ExternalUser {
            provider: provider.name.clone(),
            provider_id: sub,
            email: None,
            email_verified: false,
            claims: json!({}),
            provider_token: None,
            provider_refresh_token: None,
        };
        merge_claims(&mut user, &claims);
        Ok(user)
    }
}

/// Adds a provider's claims to the identity data (GoTrue keeps them; it drops the token's own
/// bookkeeping), and takes its email and whether the provider verified it.
fn merge_claims(user: &mut ExternalUser, claims: &Value) {
    const DROPPED: [&str; 8] = [
        "aud",
        "exp",
        "iat",
        "nbf",
        "nonce",
        "at_hash",
        "auth_time",
        "azp",
    ];
    let data = user.claims.as_object_mut();
    if let (Some(data), Some(claims)) = (data, claims.as_object()) {
        for (key, value) in claims {
            if !DROPPED.contains(&key.as_str()) {
                data.insert(key.clone(), value.clone());
            }
        }
        data.insert("provider_id".into(), json!(user.provider_id));
    }
    if let Some(email) = claims["email"].as_str().filter(|e| !e.is_empty()) {
        user.email = Some(email.to_lowercase());
        user.email_verified = match &claims["email_verified"] {
            Value::Bool(b) => *b,
            Value::String(s) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
    }
}

async fn json_of(request: reqwest::RequestBuilder, what: &str) -> Result<Value, OAuthError> {
    let response = request
        .send()
        .await
        .map_err(|err| OAuthError::Provider(format!("could not reach the {what}: {err}")))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|err| OAuthError::Provider(format!("the {what} failed: {err}")))?;
    if !status.is_success() {
        return Err(OAuthError::Provider(format!(
            "the {what} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )));
    }
    serde_json::from_slice(&body)
        .map_err(|err| OAuthError::Provider(format!("the {what} sent no JSON: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth() -> OAuth {
        let vars = [
            ("SLUICE_AUTH_EXTERNAL_IDP_ENABLED", "true"),
            ("SLUICE_AUTH_EXTERNAL_IDP_CLIENT_ID", "app"),
            ("SLUICE_AUTH_EXTERNAL_IDP_SECRET", "secret"),
            ("SLUICE_AUTH_EXTERNAL_IDP_URL", "http://127.0.0.1:9"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        OAuth::new(Providers::from_vars(vars, "http://api.test").unwrap())
    }

    #[test]
    fn states_are_signed_and_bound_to_the_cookie() {
        let oauth = oauth();
        let provider = oauth.providers.get("idp").unwrap().clone();
        let flow = FlowState {
            p: "idp".into(),
            r: "http://app.test/".into(),
            f: None,
            n: nonce_hash("cookie"),
            e: now_secs() + 60,
            l: None,
        };
        let state = oauth.sign_state(&provider, &flow);
        assert_eq!(oauth.open_state(&state, Some("cookie")).unwrap(), flow);
        assert!(oauth.open_state(&state, Some("other")).is_err());
        assert!(oauth.open_state(&state, None).is_err());
        // Another redirect under the same tag.
        let forged = FlowState {
            r: "http://evil.test/".into(),
            ..flow.clone()
        };
        let tag = state.split_once('.').unwrap().1;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert!(oauth
            .open_state(&format!("{payload}.{tag}"), Some("cookie"))
            .is_err());
        let expired = FlowState { e: 1, ..flow };
        let state = oauth.sign_state(&provider, &expired);
        assert!(oauth.open_state(&state, Some("cookie")).is_err());
    }

    #[test]
    fn link_tickets_are_signed_expire_and_are_not_states() {
        let oauth = oauth();
        let provider = oauth.providers.get("idp").unwrap().clone();
        let ticket = LinkTicket {
            p: "idp".into(),
            r: "http://app.test/".into(),
            f: None,
            u: "0b6f4b5e-2c39-4f5a-9a43-1f1f0c1f2a11".into(),
            e: now_secs() + 60,
        };
        let signed = oauth.sign_ticket(&provider, &ticket);
        assert_eq!(oauth.open_ticket(&signed).unwrap(), ticket);
        // Another user under the same tag.
        let tag = signed.split_once('.').unwrap().1;
        let other = LinkTicket {
            u: "7d1e1a8e-8b8c-4d52-a4c1-3f4b6a1e9c00".into(),
            ..ticket.clone()
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        assert!(oauth.open_ticket(&format!("{payload}.{tag}")).is_err());
        let expired = LinkTicket { e: 1, ..ticket };
        assert!(oauth
            .open_ticket(&oauth.sign_ticket(&provider, &expired))
            .is_err());
        // A state is not a ticket, nor a ticket a state (another MAC domain).
        let flow = FlowState {
            p: "idp".into(),
            r: "http://app.test/".into(),
            f: None,
            n: nonce_hash("cookie"),
            e: now_secs() + 60,
            l: None,
        };
        assert!(oauth
            .open_ticket(&oauth.sign_state(&provider, &flow))
            .is_err());
        assert!(oauth.open_state(&signed, Some("cookie")).is_err());
    }
}
