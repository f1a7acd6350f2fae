//! Mailed links: a one-time token stored as its hash, and a mail with its link and code
//! (confirmation, recovery, email change).

use std::sync::Arc;

use serde_json::Value;

use super::flow_state::Pkce;
use super::mailer::Mail;
use super::store;
use super::tokens::{random_token, token_hash};
use super::{encode_redirect, normalize_email, AccountError, Accounts, Client};

impl Accounts {
    /// POST /recover: mails a recovery link if the email has an account. The answer is the same
    /// either way, so it does not reveal which emails have accounts, and so is its time: the
    /// link is made and mailed after answering (`send_link_later`).
    pub async fn recover(
        self: &Arc<Self>,
        client: &Client,
        email: &str,
        redirect_to: Option<&str>,
        pkce: Option<Pkce>,
    ) -> Result<(), AccountError> {
        let email = normalize_email(email)?;
        self.limiter.check("recover", &client.ip, Some(&email))?;
        self.send_link_later(email, "recovery", redirect_to, pkce)
            .await;
        Ok(())
    }

    /// `send_link` in a task of its own (see `background`), so that the answer goes out first.
    /// Only an email with an account gets a token row and a mail; done before answering, they
    /// made that answer ~3x slower than the one for an unknown email, which told an attacker who
    /// has an account. A failure goes to the log: the answer cannot depend on it without telling
    /// the same thing.
    async fn send_link_later(
        self: &Arc<Self>,
        email: String,
        kind: &'static str,
        redirect_to: Option<&str>,
        pkce: Option<Pkce>,
    ) {
        let accounts = Arc::clone(self);
        let redirect_to = redirect_to.map(str::to_owned);
        let work = async move {
            let sent = accounts
                .send_link(&email, kind, redirect_to.as_deref(), pkce.as_ref())
                .await;
            if let Err(err) = sent {
                tracing::error!(kind, "could not mail a {kind} link: {err}");
            }
        };
        self.background.spawn(work).await;
    }

    /// Stores a one-time token for `email` and mails its link; the user, if there is one. With
    /// `pkce`, a flow state waits for the link (see `flow_state`).
    pub(super) async fn send_link(
        &self,
        email: &str,
        kind: &'static str,
        redirect_to: Option<&str>,
        pkce: Option<&Pkce>,
    ) -> Result<Option<Value>, AccountError> {
        let token = random_token()?;
        let hash = token_hash(&token);
        let Some(user) = store::issue_one_time_token(&self.pool, email, kind, &hash).await? else {
            return Ok(None);
        };
        if let Some(pkce) = pkce {
            let user_id = super::user_id_of(&user)?;
            let method = if kind == "signup" {
                "email/signup"
            } else {
                kind
            };
            self.create_flow_state(pkce, kind, method, Some(user_id), Some(&hash))
                .await?;
        }
        self.mail_link(email, kind, &token, redirect_to).await?;
        Ok(Some(user))
    }

    /// Mails `to` the link (and code) of a one-time token.
    pub(super) async fn mail_link(
        &self,
        to: &str,
        kind: &'static str,
        token: &str,
        redirect_to: Option<&str>,
    ) -> Result<(), AccountError> {
        let link = format!(
            "{}/auth/v1/verify?token={token}&type={kind}&redirect_to={}",
            self.settings.external_url,
            encode_redirect(&self.settings.redirect_target(redirect_to))
        );
        let (subject, intro) = match kind {
            "signup" => (
                "Confirm your signup",
                "Follow this link to confirm your email:",
            ),
            "email_change" => (
                "Confirm your new email",
                "Follow this link to confirm the change of your email to this address:",
            ),
            _ => (
                "Reset your password",
                "Follow this link to reset your password:",
            ),
        };
        let mail = Mail {
            kind,
            to: to.to_owned(),
            subject: subject.to_owned(),
            body: format!("{intro}\n\n{link}\n\nOr enter this code: {token}\n"),
        };
        self.mailer.send(&self.pool, mail).await?;
        Ok(())
    }
}
