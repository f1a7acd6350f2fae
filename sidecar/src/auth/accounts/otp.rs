//! Passwordless sign-in: magic links and 6-digit email codes (`POST /otp`), phone codes, phone
//! sign-up, anonymous users, and the admin's invitations and generated links; verification of
//! all of them (`POST /verify`, `GET /verify`).
//!
//! Every code is single use, expires (`SLUICE_AUTH_OTP_EXPIRY`), and is stored only as a hash
//! (`auth.otp_codes`); a typed code is compared in constant time, and each guess counts toward
//! the per-address and per-account rate limits and toward the code's own limit of
//! `MAX_CODE_ATTEMPTS` wrong guesses, after which it is gone.

use serde_json::{json, Value};
use uuid::Uuid;

use super::flow_state::{constant_time_eq, Pkce};
use super::mailer::Mail;
use super::session::{Session, SignedUp};
use super::store::StoreError;
use super::store_otp;
use super::tokens::{random_token, token_hash, IssueError};
use super::{encode_redirect, normalize_email, user_id_of, AccountError, Accounts, Client};

/// Wrong guesses a code survives; the next one deletes it.
pub const MAX_CODE_ATTEMPTS: i32 = 5;

/// Where a code goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Email(String),
    /// E.164 digits, without the `+`.
    Phone(String),
}

impl Contact {
    fn key(&self) -> &str {
        match self {
            Contact::Email(email) => email,
            Contact::Phone(phone) => phone,
        }
    }

    fn email(&self) -> Option<&str> {
        match self {
            Contact::Email(email) => Some(email),
            Contact::Phone(_) => None,
        }
    }

    fn phone(&self) -> Option<&str> {
        match self {
            Contact::Phone(phone) => Some(phone),
            Contact::Email(_) => None,
        }
    }

    fn channel(&self) -> &'static str {
        match self {
            Contact::Email(_) => "email",
            Contact::Phone(_) => "sms",
        }
    }
}

/// A phone number as GoTrue keeps it: E.164 digits without `+`. Spaces, dashes, dots and
/// parentheses are dropped; anything else, or a length outside 8..=15 digits, is refused.
pub fn normalize_phone(phone: &str) -> Result<String, AccountError> {
    let digits: String = phone
        .trim()
        .trim_start_matches('+')
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let valid = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(digits)
    } else {
        Err(AccountError::InvalidPhone)
    }
}

/// The code to text to `phone`: a test number's fixed code (`true`: nothing is to be sent),
/// else a fresh random one.
pub(super) fn code_for_phone(
    test_otp: &std::collections::HashMap<String, String>,
    phone: &str,
) -> Result<(String, bool), IssueError> {
    match test_otp.get(phone) {
        Some(code) => Ok((code.clone(), true)),
        None => Ok((random_code()?, false)),
    }
}

/// A uniformly random 6-digit code.
pub(super) fn random_code() -> Result<String, IssueError> {
    loop {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).map_err(|err| IssueError::Random(err.to_string()))?;
        let n = u32::from_le_bytes(bytes);
        // 4_294_000_000 is a multiple of 10^6: below it, n % 10^6 is uniform.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// How a code is stored: salted with its user, so equal codes of two users differ.
pub(super) fn code_hash(user_id: Uuid, code: &str) -> String {
    token_hash(&format!("{user_id}:{code}"))
}

fn is_code(token: &str) -> bool {
    token.len() == 6 && token.bytes().all(|b| b.is_ascii_digit())
}

/// A code just issued for an email, with its link: what `generateLink` answers.
#[derive(Debug, Clone)]
pub struct IssuedLink {
    pub user: Value,
    pub code: String,
    pub link: String,
    pub hashed_token: String,
    pub redirect_to: String,
    pub purpose: &'static str,
}

impl IssuedLink {
    /// GoTrue's `generate_link` answer: the user with the link's fields beside it.
    pub fn to_json(&self) -> Value {
        let mut body = self.user.clone();
        if let Some(object) = body.as_object_mut() {
            object.insert("action_link".into(), json!(self.link));
            object.insert("email_otp".into(), json!(self.code));
            object.insert("hashed_token".into(), json!(self.hashed_token));
            object.insert("redirect_to".into(), json!(self.redirect_to));
            object.insert("verification_type".into(), json!(self.purpose));
        }
        body
    }
}

/// What `POST /verify` was given.
#[derive(Debug, Clone, Default)]
pub struct VerifyRequest {
    pub kind: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub token: Option<String>,
    pub token_hash: Option<String>,
}

/// What a followed link led to: a session (implicit flow) or a PKCE auth code.
#[derive(Debug)]
pub enum LinkOutcome {
    Session(Session),
    AuthCode(String),
}

/// The `auth.otp_codes` purposes a verification type accepts, the `auth.one_time_tokens` kind of
/// the older mailed links it also accepts, and the channel.
fn accepted(kind: &str) -> Result<(&'static [&'static str], Option<&'static str>), AccountError> {
    Ok(match kind {
        "email" | "magiclink" | "signup" => (&["magiclink", "signup"], Some("signup")),
        "invite" => (&["invite"], None),
        "recovery" => (&["recovery"], Some("recovery")),
        "email_change" => (&[], Some("email_change")),
        "sms" => (&["sms"], None),
        // Phone-change codes have their own channel (`flows::verify_phone_change`).
        "phone_change" => (&[], None),
        _ => return Err(AccountError::Validation("Unsupported verification type")),
    })
}

/// The `amr` method of a session started by a code of `purpose`.
fn method_of(purpose: &str, typed: bool) -> &'static str {
    match purpose {
        _ if typed => "otp",
        "magiclink" => "magiclink",
        "signup" => "email/signup",
        "invite" => "invite",
        "recovery" => "recovery",
        _ => "otp",
    }
}

impl Accounts {
    /// `POST /otp`: mails a magic link and code, or texts a code; the SMS message id, if any.
    /// An unknown email or phone gets an account unless `create_user` is false.
    pub async fn send_otp(
        &self,
        client: &Client,
        contact: Contact,
        create_user: bool,
        data: Option<Value>,
        redirect_to: Option<&str>,
        pkce: Option<Pkce>,
    ) -> Result<Option<String>, AccountError> {
        self.limiter.check("otp", &client.ip, Some(contact.key()))?;
        let existing =
            store_otp::user_by_contact(&self.pool, contact.email(), contact.phone()).await?;
        let user = match existing {
            Some(user) => user,
            None if !create_user => return Err(AccountError::OtpDisabled),
            None if self.settings.disable_signup => return Err(AccountError::SignupDisabled),
            None => self.create_user(&contact, data, None, false).await?,
        };
        let user_id = user_id_of(&user)?;
        match &contact {
            Contact::Email(email) => {
                let purpose = if user["email_confirmed_at"].is_null() {
                    "signup"
                } else {
                    "magiclink"
                };
                self.issue_email_code(user_id, email, purpose, redirect_to, pkce.as_ref(), true)
                    .await?;
                Ok(None)
            }
            Contact::Phone(phone) => Ok(Some(self.text_code(user_id, phone).await?)),
        }
    }

    async fn create_user(
        &self,
        contact: &Contact,
        data: Option<Value>,
        password_hash: Option<&str>,
        invited: bool,
    ) -> Result<Value, AccountError> {
        let created = store_otp::create_user(
            &self.pool,
            contact.email(),
            contact.phone(),
            &data.unwrap_or_else(|| json!({})),
            password_hash,
            invited,
        )
        .await;
        match created {
            Ok(user) => Ok(user),
            Err(StoreError::EmailTaken) => Err(match contact {
                Contact::Email(_) => AccountError::EmailExists,
                Contact::Phone(_) => AccountError::PhoneExists,
            }),
            Err(err) => Err(err.into()),
        }
    }

    /// Stores a new code and link token for `user_id` and, if `send`, mails them to `email`.
    pub(super) async fn issue_email_code(
        &self,
        user_id: Uuid,
        email: &str,
        purpose: &'static str,
        redirect_to: Option<&str>,
        pkce: Option<&Pkce>,
        send: bool,
    ) -> Result<IssuedLink, AccountError> {
        let code = random_code()?;
        let link_token = random_token()?;
        let link_hash = token_hash(&link_token);
        let user = store_otp::issue_otp(
            &self.pool,
            user_id,
            "email",
            purpose,
            &code_hash(user_id, &code),
            Some(&link_hash),
        )
        .await?
        .ok_or(AccountError::UserNotFound)?;
        if let Some(pkce) = pkce {
            self.create_flow_state(
                pkce,
                purpose,
                method_of(purpose, false),
                Some(user_id),
                Some(&link_hash),
            )
            .await?;
        }
        let redirect_to = self.settings.redirect_target(redirect_to);
        let link = format!(
            "{}/auth/v1/verify?token={link_token}&type={purpose}&redirect_to={}",
            self.settings.external_url,
            encode_redirect(&redirect_to)
        );
        if send {
            let (subject, intro) = match purpose {
                "signup" => ("Confirm your signup", "Follow this link to confirm your email and sign in:"),
                "invite" => ("You have been invited", "You have been invited to create an account. Follow this link to accept the invite:"),
                "recovery" => ("Reset your password", "Follow this link to reset your password:"),
                _ => ("Your magic link", "Follow this link to sign in:"),
            };
            let mail = Mail {
                kind: purpose,
                to: email.to_owned(),
                subject: subject.to_owned(),
                body: format!("{intro}\n\n{link}\n\nOr enter this code: {code}\n"),
            };
            self.mailer.send(&self.pool, mail).await?;
        }
        Ok(IssuedLink {
            user,
            code,
            link,
            hashed_token: link_hash,
            redirect_to,
            purpose,
        })
    }

    /// Stores a new phone code for `user_id` and texts it, unless the number is a test number
    /// (its fixed code is stored and nothing is sent). The message id ("" for a test number).
    pub(super) async fn text_code(
        &self,
        user_id: Uuid,
        phone: &str,
    ) -> Result<String, AccountError> {
        let (code, fixed) = code_for_phone(&self.settings.sms.test_otp, phone)?;
        store_otp::issue_otp(
            &self.pool,
            user_id,
            "sms",
            "sms",
            &code_hash(user_id, &code),
            None,
        )
        .await?
        .ok_or(AccountError::UserNotFound)?;
        if fixed {
            return Ok(String::new());
        }
        let body = format!("Your code is {code}");
        Ok(self.sms.send(&self.pool, phone, &body).await?)
    }

    /// `POST /signup` with a phone: the user, unconfirmed until the texted code is verified; with
    /// autoconfirm (GoTrue's SMS autoconfirm), confirmed at once and signed in, nothing texted.
    pub async fn sign_up_phone(
        &self,
        client: &Client,
        phone: &str,
        password: &str,
        data: Option<Value>,
    ) -> Result<SignedUp, AccountError> {
        if self.settings.disable_signup {
            return Err(AccountError::SignupDisabled);
        }
        let phone = normalize_phone(phone)?;
        self.limiter.check("signup", &client.ip, Some(&phone))?;
        if password.is_empty() {
            return Err(AccountError::Validation("Signup requires a valid password"));
        }
        self.check_password(password)?;
        let hash = self.passwords.hash(password.to_owned()).await?;
        let user = self
            .create_user(&Contact::Phone(phone.clone()), data, Some(&hash), false)
            .await?;
        let user_id = user_id_of(&user)?;
        if self.settings.autoconfirm {
            super::store_flow::set_phone(&self.pool, user_id, &phone).await?;
            return Ok(SignedUp::Session(
                self.start(client, user_id, "password").await?,
            ));
        }
        self.text_code(user_id, &phone).await?;
        Ok(SignedUp::AwaitingConfirmation(
            store_otp::user_by_contact(&self.pool, None, Some(&phone))
                .await?
                .unwrap_or(user),
        ))
    }

    /// grant_type=password with a phone. An unconfirmed phone is `phone_not_confirmed`; a
    /// malformed one gets the answer a wrong password gets.
    pub async fn sign_in_phone(
        &self,
        client: &Client,
        phone: &str,
        password: &str,
    ) -> Result<Session, AccountError> {
        let phone = normalize_phone(phone).unwrap_or_else(|_| phone.trim().to_owned());
        self.limiter.check_sign_in(&client.ip, &phone)?;
        let row = store_otp::password_of_phone(&self.pool, &phone).await?;
        match self.sign_in_with(client, row, password).await {
            Err(AccountError::EmailNotConfirmed) => Err(AccountError::PhoneNotConfirmed),
            outcome => outcome,
        }
    }

    /// `POST /signup` with neither email nor phone: an anonymous user and their session, when
    /// `SLUICE_AUTH_ANONYMOUS_USERS` allows it.
    pub async fn sign_in_anonymously(
        &self,
        client: &Client,
        data: Option<Value>,
    ) -> Result<Session, AccountError> {
        if !self.settings.anonymous_users {
            return Err(AccountError::AnonymousDisabled);
        }
        if self.settings.disable_signup {
            return Err(AccountError::SignupDisabled);
        }
        self.limiter.check("anonymous", &client.ip, None)?;
        let user = store_otp::create_user(
            &self.pool,
            None,
            None,
            &data.unwrap_or_else(|| json!({})),
            None,
            false,
        )
        .await?;
        self.start(client, user_id_of(&user)?, "anonymous").await
    }

    /// `POST /invite` (admin): creates the user if needed and mails an invitation.
    pub async fn invite(
        &self,
        email: &str,
        data: Option<Value>,
        redirect_to: Option<&str>,
    ) -> Result<Value, AccountError> {
        let issued = self
            .generate_link("invite", email, None, data, redirect_to, true)
            .await?;
        Ok(issued.user)
    }

    /// `POST /admin/generate_link`: a code and link of `kind` (signup, magiclink, recovery,
    /// invite) for `email`, mailed only if `send` (invitations).
    pub async fn generate_link(
        &self,
        kind: &str,
        email: &str,
        password: Option<&str>,
        data: Option<Value>,
        redirect_to: Option<&str>,
        send: bool,
    ) -> Result<IssuedLink, AccountError> {
        let email = normalize_email(email)?;
        let existing = store_otp::user_by_contact(&self.pool, Some(&email), None).await?;
        let contact = Contact::Email(email.clone());
        let (user, purpose): (Value, &'static str) = match (kind, existing) {
            ("signup", Some(_)) => return Err(AccountError::EmailExists),
            ("invite", Some(user)) if !user["email_confirmed_at"].is_null() => {
                return Err(AccountError::EmailExists)
            }
            ("invite", Some(user)) => (user, "invite"),
            ("invite", None) => (
                self.create_user(&contact, data, None, true).await?,
                "invite",
            ),
            // As GoTrue does: a magic link for an unknown email signs it up.
            ("signup" | "magiclink", None) => {
                let hash = match password {
                    Some(password) if !password.is_empty() => {
                        self.check_password(password)?;
                        Some(self.passwords.hash(password.to_owned()).await?)
                    }
                    _ => None,
                };
                let user = self
                    .create_user(&contact, data, hash.as_deref(), false)
                    .await?;
                (user, "signup")
            }
            ("magiclink", Some(user)) => (user, "magiclink"),
            ("recovery", Some(user)) => (user, "recovery"),
            ("recovery", None) => return Err(AccountError::UserNotFound),
            _ => {
                return Err(AccountError::Validation(
                    "Invalid link type: use signup, magiclink, recovery or invite",
                ))
            }
        };
        let user_id = user_id_of(&user)?;
        self.issue_email_code(user_id, &email, purpose, redirect_to, None, send)
            .await
    }

    /// `POST /verify`: a typed code (with its email or phone), a mailed token, or its hash
    /// (`token_hash`); the session it starts.
    pub async fn verify_otp(
        &self,
        client: &Client,
        request: VerifyRequest,
    ) -> Result<Session, AccountError> {
        let (purposes, legacy) = accepted(&request.kind)?;
        if let Some(hash) = request.token_hash.filter(|hash| !hash.is_empty()) {
            let hash = hash.to_lowercase();
            return match self.consume_link(client, &hash, purposes).await? {
                Some(session) => Ok(session),
                None => match legacy {
                    Some(kind) => self.verify(client, kind, &hash, true).await,
                    None => Err(AccountError::OtpInvalid),
                },
            };
        }
        let token =
            request
                .token
                .filter(|token| !token.is_empty())
                .ok_or(AccountError::Validation(
                    "Verify requires a token or a token hash",
                ))?;
        if !is_code(&token) {
            // A token from a mailed link, typed or pasted.
            let hash = token_hash(&token);
            return match self.consume_link(client, &hash, purposes).await? {
                Some(session) => Ok(session),
                None => match legacy {
                    Some(kind) => self.verify(client, kind, &token, false).await,
                    None => Err(AccountError::OtpInvalid),
                },
            };
        }
        let contact = match (request.kind.as_str(), request.email, request.phone) {
            ("sms" | "phone_change", _, Some(phone)) => Contact::Phone(normalize_phone(&phone)?),
            ("sms", _, None) => {
                return Err(AccountError::Validation(
                    "Only a phone number can be verified with type sms",
                ))
            }
            (_, Some(email), _) => Contact::Email(normalize_email(&email)?),
            _ => {
                return Err(AccountError::Validation(
                    "Verify requires an email or phone with the token",
                ))
            }
        };
        if let ("phone_change", Contact::Phone(phone)) = (request.kind.as_str(), &contact) {
            return self.verify_phone_change(client, phone, &token).await;
        }
        self.verify_code(client, &contact, &token, purposes).await
    }

    /// A typed code: counted, compared in constant time, used up.
    async fn verify_code(
        &self,
        client: &Client,
        contact: &Contact,
        code: &str,
        purposes: &[&str],
    ) -> Result<Session, AccountError> {
        self.limiter
            .check("verify", &client.ip, Some(contact.key()))?;
        let valid = self.settings.otp_expiry.as_secs_f64();
        let channel = contact.channel();
        let pending = store_otp::otp_pending(
            &self.pool,
            channel,
            contact.email(),
            contact.phone(),
            purposes,
            valid,
        )
        .await?;
        let user_id: Uuid = pending["user_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or(AccountError::OtpInvalid)?;
        let stored = pending["code_hash"].as_str().unwrap_or_default();
        let offered = code_hash(user_id, code);
        if !constant_time_eq(offered.as_bytes(), stored.as_bytes()) {
            store_otp::otp_failed(&self.pool, user_id, channel, MAX_CODE_ATTEMPTS).await?;
            return Err(AccountError::OtpInvalid);
        }
        let consumed = store_otp::consume_otp(
            &self.pool,
            Some(user_id),
            Some(&offered),
            None,
            purposes,
            valid,
        )
        .await?
        // Used by a concurrent request in between.
        .ok_or(AccountError::OtpInvalid)?;
        let purpose = consumed["purpose"].as_str().unwrap_or_default();
        self.start(client, user_id, method_of(purpose, true)).await
    }

    /// Uses up the code whose link token hashes to `link_hash`: its session, `None` if no live
    /// code has that link.
    async fn consume_link(
        &self,
        client: &Client,
        link_hash: &str,
        purposes: &[&str],
    ) -> Result<Option<Session>, AccountError> {
        if purposes.is_empty() {
            return Ok(None);
        }
        let valid = self.settings.otp_expiry.as_secs_f64();
        let Some(consumed) =
            store_otp::consume_otp(&self.pool, None, None, Some(link_hash), purposes, valid)
                .await?
        else {
            return Ok(None);
        };
        let user_id = user_id_of(&json!({"id": consumed["user_id"]}))?;
        let purpose = consumed["purpose"].as_str().unwrap_or_default();
        Ok(Some(
            self.start(client, user_id, method_of(purpose, false))
                .await?,
        ))
    }

    /// `GET /verify`, the mailed link: a session, or, when the link's flow used PKCE, an auth
    /// code for the redirect.
    pub async fn verify_link(
        &self,
        client: &Client,
        kind: &str,
        token: &str,
    ) -> Result<LinkOutcome, AccountError> {
        let (purposes, legacy) = accepted(kind)?;
        let link_hash = token_hash(token);
        let valid = self.settings.otp_expiry.as_secs_f64();
        let user_id =
            match store_otp::consume_otp(&self.pool, None, None, Some(&link_hash), purposes, valid)
                .await?
            {
                Some(consumed) => (
                    user_id_of(&json!({"id": consumed["user_id"]}))?,
                    consumed["purpose"].as_str().unwrap_or_default().to_owned(),
                ),
                None => {
                    let kind = legacy.ok_or(AccountError::OtpExpired)?;
                    (self.consume_token(kind, &link_hash).await?, kind.to_owned())
                }
            };
        let (user_id, purpose) = user_id;
        if let Some(code) = self.auth_code_for_link(&link_hash, user_id).await? {
            return Ok(LinkOutcome::AuthCode(code));
        }
        let method = method_of(&purpose, false);
        Ok(LinkOutcome::Session(
            self.start(client, user_id, method).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_e164_digits() {
        assert_eq!(normalize_phone("+1 (415) 212-7777").unwrap(), "14152127777");
        assert_eq!(normalize_phone("4915112345678").unwrap(), "4915112345678");
        for bad in [
            "",
            "+",
            "12345",
            "+1 415 CALL ME",
            "0044123456789",
            "1234567890123456",
        ] {
            assert!(normalize_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_are_six_digits_and_differ() {
        let codes: std::collections::HashSet<String> =
            (0..50).map(|_| random_code().unwrap()).collect();
        assert!(codes.len() > 45);
        assert!(codes.iter().all(|code| is_code(code)));
        let user = Uuid::from_u128(1);
        assert_ne!(
            code_hash(user, "123456"),
            code_hash(Uuid::from_u128(2), "123456")
        );
    }
}
