//! The external providers, configured as GoTrue's are: for each provider name,
//! `SLUICE_AUTH_EXTERNAL_<NAME>_ENABLED`, `_CLIENT_ID`, `_SECRET`, `_REDIRECT_URI` (default: this
//! server's `/auth/v1/callback`) and `_URL`.
//!
//! - `github`: OAuth 2.0 and GitHub's user API (not OpenID Connect); `_URL` names a GitHub
//!   Enterprise server instead of github.com.
//! - `google`: OpenID Connect with the issuer `https://accounts.google.com` (or `_URL`).
//! - any other name: OpenID Connect, `_URL` being the issuer (Keycloak, Auth0, a company's own
//!   provider...); its endpoints come from the issuer's discovery document.

use std::collections::BTreeMap;

/// How a provider is spoken to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// OpenID Connect: endpoints by discovery, the user from the ID token (and userinfo).
    Oidc { issuer: String },
    /// GitHub's OAuth 2.0 apps: fixed endpoints, the user from its REST API.
    Github { web: String, api: String },
}

#[derive(Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub client_id: String,
    pub secret: String,
    pub redirect_uri: String,
    pub kind: Kind,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The configured providers by (lower-case) name; a disabled one is kept, to answer as GoTrue does
/// ("provider is not enabled" rather than "could not be found").
#[derive(Debug, Clone, Default)]
pub struct Providers {
    pub by_name: BTreeMap<String, Option<Provider>>,
}

const PREFIX: &str = "SLUICE_AUTH_EXTERNAL_";

impl Providers {
    /// From `vars` (the environment's): every `SLUICE_AUTH_EXTERNAL_<NAME>_ENABLED`. A provider
    /// enabled without a client id, a secret, or (for a generic one) an issuer URL is refused.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
        external_url: &str,
    ) -> Result<Providers, String> {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(key, _)| key.starts_with(PREFIX))
            .collect();
        let mut by_name = BTreeMap::new();
        for (key, value) in &vars {
            let Some(name) = key
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.strip_suffix("_ENABLED"))
                .filter(|name| !name.is_empty())
            else {
                continue;
            };
            let get = |field: &str| {
                vars.get(&format!("{PREFIX}{name}_{field}"))
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
            };
            let lower = name.to_ascii_lowercase();
            if !matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "true" | "1" | "yes"
            ) {
                by_name.insert(lower, None);
                continue;
            }
            let client_id =
                get("CLIENT_ID").ok_or(format!("{PREFIX}{name}_CLIENT_ID is required"))?;
            let secret = get("SECRET").ok_or(format!("{PREFIX}{name}_SECRET is required"))?;
            let redirect_uri = get("REDIRECT_URI").unwrap_or_else(|| {
                format!("{}/auth/v1/callback", external_url.trim_end_matches('/'))
            });
            let url = get("URL").map(|url| url.trim_end_matches('/').to_owned());
            let kind = match lower.as_str() {
                "github" => match url {
                    Some(web) => Kind::Github {
                        api: format!("{web}/api/v3"),
                        web,
                    },
                    None => Kind::Github {
                        web: "https://github.com".into(),
                        api: "https://api.github.com".into(),
                    },
                },
                "google" => Kind::Oidc {
                    issuer: url.unwrap_or_else(|| "https://accounts.google.com".into()),
                },
                _ => Kind::Oidc {
                    issuer: url.ok_or(format!(
                        "{PREFIX}{name}_URL (the OpenID Connect issuer) is required"
                    ))?,
                },
            };
            by_name.insert(
                lower.clone(),
                Some(Provider {
                    name: lower,
                    client_id,
                    secret,
                    redirect_uri,
                    kind,
                }),
            );
        }
        Ok(Providers { by_name })
    }

    /// The enabled provider `name`, or GoTrue's reason why not.
    pub fn get(&self, name: &str) -> Result<&Provider, String> {
        match self.by_name.get(&name.to_ascii_lowercase()) {
            Some(Some(provider)) => Ok(provider),
            Some(None) => Err("provider is not enabled".into()),
            None => Err(format!("Provider {name} could not be found")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn providers_come_from_gotrues_variables() {
        let providers = Providers::from_vars(
            vars(&[
                ("SLUICE_AUTH_EXTERNAL_URL", "http://api.test"),
                ("SLUICE_AUTH_EXTERNAL_KEYCLOAK_ENABLED", "true"),
                ("SLUICE_AUTH_EXTERNAL_KEYCLOAK_CLIENT_ID", "app"),
                ("SLUICE_AUTH_EXTERNAL_KEYCLOAK_SECRET", "s3"),
                (
                    "SLUICE_AUTH_EXTERNAL_KEYCLOAK_URL",
                    "http://idp.test/realms/x/",
                ),
                ("SLUICE_AUTH_EXTERNAL_GITHUB_ENABLED", "true"),
                ("SLUICE_AUTH_EXTERNAL_GITHUB_CLIENT_ID", "gh"),
                ("SLUICE_AUTH_EXTERNAL_GITHUB_SECRET", "ghs"),
                ("SLUICE_AUTH_EXTERNAL_GOOGLE_ENABLED", "false"),
            ]),
            "http://api.test/",
        )
        .unwrap();
        let keycloak = providers.get("keycloak").unwrap();
        assert_eq!(keycloak.redirect_uri, "http://api.test/auth/v1/callback");
        assert_eq!(
            keycloak.kind,
            Kind::Oidc {
                issuer: "http://idp.test/realms/x".into()
            }
        );
        assert!(matches!(
            &providers.get("github").unwrap().kind,
            Kind::Github { api, .. } if api == "https://api.github.com"
        ));
        assert_eq!(
            providers.get("google").unwrap_err(),
            "provider is not enabled"
        );
        assert_eq!(
            providers.get("azure").unwrap_err(),
            "Provider azure could not be found"
        );
        let missing = Providers::from_vars(
            vars(&[("SLUICE_AUTH_EXTERNAL_OKTA_ENABLED", "true")]),
            "http://api.test",
        );
        assert!(missing.unwrap_err().contains("OKTA_CLIENT_ID"));
    }
}
