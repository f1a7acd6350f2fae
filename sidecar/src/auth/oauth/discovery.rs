//! OpenID Connect discovery: an issuer's `/.well-known/openid-configuration`, fetched the first
//! time a flow needs it (not at start-up, so a provider that is down then does not stop the
//! sidecar) and fetched again once it is older than the TTL, so a provider's new endpoints or keys
//! URL are picked up without a restart. If a refresh fails, the last good document keeps serving
//! (logged) rather than failing sign-ins during a provider's hiccup.
//!
//! As OpenID Connect Discovery 1.0 §4.3 requires, the document's `issuer` must be the configured
//! issuer exactly, or it is refused (a document served for another issuer would let that issuer's
//! tokens pass as this one's).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The fields of a discovery document a sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("could not fetch {url}: {source}")]
    Fetch { url: String, source: reqwest::Error },
    #[error("{url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("{url} is not a discovery document: {source}")]
    Parse {
        url: String,
        source: serde_json::Error,
    },
    #[error("the discovery document names the issuer {found:?}, not {expected:?}")]
    IssuerMismatch { expected: String, found: String },
}

/// Discovery documents by issuer, each with when it was fetched.
#[derive(Debug)]
pub struct Discovery {
    http: reqwest::Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Arc<ProviderMetadata>)>>,
}

impl Discovery {
    pub fn new(http: reqwest::Client, ttl: Duration) -> Discovery {
        Discovery {
            http,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The document of `issuer`: cached while younger than the TTL, else fetched.
    pub async fn metadata(&self, issuer: &str) -> Result<Arc<ProviderMetadata>, DiscoveryError> {
        let cached = self.cached(issuer);
        if let Some((fetched, metadata)) = &cached {
            if fetched.elapsed() < self.ttl {
                return Ok(Arc::clone(metadata));
            }
        }
        match self.fetch(issuer).await {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                self.lock()
                    .insert(issuer.to_owned(), (Instant::now(), Arc::clone(&metadata)));
                Ok(metadata)
            }
            Err(err) => match cached {
                Some((_, stale)) => {
                    tracing::warn!(
                        "OIDC discovery for {issuer} failed, keeping the last document: {err}"
                    );
                    Ok(stale)
                }
                None => Err(err),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<ProviderMetadata>)>> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cached(&self, issuer: &str) -> Option<(Instant, Arc<ProviderMetadata>)> {
        self.lock()
            .get(issuer)
            .map(|(fetched, metadata)| (*fetched, Arc::clone(metadata)))
    }

    async fn fetch(&self, issuer: &str) -> Result<ProviderMetadata, DiscoveryError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let response =
            self.http
                .get(&url)
                .send()
                .await
                .map_err(|source| DiscoveryError::Fetch {
                    url: url.clone(),
                    source,
                })?;
        if !response.status().is_success() {
            return Err(DiscoveryError::Status {
                url,
                status: response.status(),
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|source| DiscoveryError::Fetch {
                url: url.clone(),
                source,
            })?;
        let metadata: ProviderMetadata =
            serde_json::from_slice(&body).map_err(|source| DiscoveryError::Parse {
                url: url.clone(),
                source,
            })?;
        if metadata.issuer != issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: metadata.issuer,
            });
        }
        Ok(metadata)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::{Json, Router};
    use serde_json::{json, Value};

    use super::*;

    /// A provider whose discovery document names `jwks_uri` after the number of the request, and
    /// which fails while `down` is set.
    #[derive(Clone, Default)]
    struct Provider {
        hits: Arc<AtomicUsize>,
        down: Arc<std::sync::atomic::AtomicBool>,
        issuer: Arc<Mutex<String>>,
    }

    async fn document(State(provider): State<Provider>) -> Result<Json<Value>, StatusCode> {
        let hit = provider.hits.fetch_add(1, Ordering::SeqCst) + 1;
        if provider.down.load(Ordering::SeqCst) {
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        }
        let issuer = provider.issuer.lock().unwrap().clone();
        Ok(Json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks/{hit}"),
        })))
    }

    #[tokio::test]
    async fn fetched_when_first_needed_cached_then_refreshed_after_the_ttl() {
        let provider = Provider::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        *provider.issuer.lock().unwrap() = issuer.clone();
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(document))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let ttl = Duration::from_millis(300);
        let discovery = Discovery::new(reqwest::Client::new(), ttl);
        assert_eq!(
            provider.hits.load(Ordering::SeqCst),
            0,
            "nothing at start-up"
        );
        let first = discovery.metadata(&issuer).await.unwrap();
        assert_eq!(first.jwks_uri, format!("{issuer}/jwks/1"));
        assert_eq!(first.token_endpoint, format!("{issuer}/token"));
        let again = discovery.metadata(&issuer).await.unwrap();
        assert_eq!(again.jwks_uri, format!("{issuer}/jwks/1"));
        assert_eq!(
            provider.hits.load(Ordering::SeqCst),
            1,
            "served from the cache"
        );

        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        let refreshed = discovery.metadata(&issuer).await.unwrap();
        assert_eq!(refreshed.jwks_uri, format!("{issuer}/jwks/2"));

        // The provider goes down: after the TTL the last good document still serves.
        provider.down.store(true, Ordering::SeqCst);
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        let stale = discovery.metadata(&issuer).await.unwrap();
        assert_eq!(stale.jwks_uri, format!("{issuer}/jwks/2"));
        assert_eq!(provider.hits.load(Ordering::SeqCst), 3, "it did try");

        // A fresh cache has nothing to fall back on; and a document for another issuer is refused.
        let cold = Discovery::new(reqwest::Client::new(), ttl);
        let err = cold.metadata(&issuer).await.unwrap_err();
        assert!(matches!(err, DiscoveryError::Status { .. }), "{err}");
        provider.down.store(false, Ordering::SeqCst);
        *provider.issuer.lock().unwrap() = "https://evil.example".into();
        let err = cold.metadata(&issuer).await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::IssuerMismatch { .. }),
            "{err}"
        );
    }
}
