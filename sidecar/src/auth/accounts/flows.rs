//! The flows around an account that already exists, as GoTrue runs them: resending a pending
//! confirmation (`POST /resend`), reauthentication nonces (`GET /reauthenticate`, checked by a
//! password change), changing the phone number (`PUT /user {phone}`, verified by
//! `verifyOtp({type: 'phone_change'})`), and the admin's email-change links.
//!
//! Codes are 6 digits, stored only as a hash salted with the user (`auth.otp_codes`, a channel
//! of their own per flow, so a new one replaces the old one), expire after
//! `SLUICE_AUTH_OTP_EXPIRY`, are compared in constant time and single use, and a code survives
//! `MAX_CODE_ATTEMPTS` wrong guesses.

use serde_json::Value;
use uuid::Uuid;

use super::flow_state::constant_time_eq;
use super::mailer::Mail;
use super::otp::{code_for_phone, code_hash, random_code, IssuedLink, MAX_CODE_ATTEMPTS};
use super::session::Session;
use super::store::{self, StoreError};
use super::store_flow::{self, PHONE_CHANGE, REAUTHENTICATION};
use super::store_otp;
use super::tokens::{random_token, token_hash};
use super::{encode_redirect, normalize_email, user_id_of, AccountError, Accounts, Caller, Client};

/// A session this recent changes its password without a nonce (GoTrue: 24 hours).
const RECENT_SESSION_SECS: f64 = 24.0 * 3600.0;

/// What `POST /resend` resends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendKind {
    Signup,
    EmailChange,
    Sms,
    PhoneChange,
}

impl ResendKind {
    pub fn parse(kind: &str) -> Result<ResendKind, AccountError> {
        Ok(match kind {
            "signup" => ResendKind::Signup,
            "email_change" => ResendKind::EmailChange,
            "sms" => ResendKind::Sms,
            "phone_change" => ResendKind::PhoneChange,
            _ => {
                return Err(AccountError::Validation(
                    "Missing one of these types: signup, email_change, sms, phone_change",
                ))
            }
        })
    }
}

/// A unique violation on the phone number: another user has it.
fn phone_taken(err: StoreError) -> AccountError {
    match err {
        StoreError::EmailTaken => AccountError::PhoneExists,
        err => err.into(),
    }
}

fn nonempty(value: &Value) -> Option<&str> {
    value.as_str().filter(|text| !text.is_empty())
}

impl Accounts {
    /// `POST /resend`: a new code (and link) for a pending confirmation, replacing the old one,
    /// to the email or phone of an account. Nothing is sent, and the answer is the same, when
    /// there is no such account or nothing is pending (GoTrue's answer). The SMS message id, if
    /// a text was sent.
    pub async fn resend(
        &self,
        client: &Client,
        kind: ResendKind,
        email: Option<&str>,
        phone: Option<&str>,
        redirect_to: Option<&str>,
    ) -> Result<Option<String>, AccountError> {
        let email = email.filter(|email| !email.is_empty());
        let phone = phone.filter(|phone| !phone.is_empty());
        if email.is_none() && kind == ResendKind::Signup {
            return Err(AccountError::Validation(
                "Type provided requires an email address",
            ));
        }
        if phone.is_none() && kind == ResendKind::Sms {
            return Err(AccountError::Validation(
                "Type provided requires a phone number",
            ));
        }
        let (email, phone) = match (email, phone) {
            (Some(_), Some(_)) => {
                return Err(AccountError::Validation(
                    "Only an email address or phone number should be provided.",
                ))
            }
            (Some(email), None) => (Some(normalize_email(email)?), None),
            (None, Some(phone)) => (None, Some(super::otp::normalize_phone(phone)?)),
            (None, None) => {
                return Err(AccountError::Validation(
                    "Missing email address or phone number",
                ))
            }
        };
        let key = email.as_deref().or(phone.as_deref()).unwrap_or_default();
        self.limiter.check("resend", &client.ip, Some(key))?;
        let Some(user) =
            store_otp::user_by_contact(&self.pool, email.as_deref(), phone.as_deref()).await?
        else {
            return Ok(None);
        };
        let user_id = user_id_of(&user)?;
        let sent = match kind {
            ResendKind::Signup => {
                let Some(email) = nonempty(&user["email"]) else {
                    return Ok(None);
                };
                if !user["email_confirmed_at"].is_null() {
                    return Ok(None);
                }
                self.issue_email_code(user_id, email, "signup", redirect_to, None, true)
                    .await?;
                store_flow::drop_one_time_token(&self.pool, user_id, "signup").await?;
                Ok(None)
            }
            ResendKind::Sms => {
                let Some(phone) = nonempty(&user["phone"]) else {
                    return Ok(None);
                };
                if !user["phone_confirmed_at"].is_null() {
                    return Ok(None);
                }
                Some(self.text_code(user_id, phone).await).transpose()
            }
            ResendKind::EmailChange => {
                let Some(new_email) = nonempty(&user["new_email"]) else {
                    return Ok(None);
                };
                self.request_email_change(user_id, new_email, redirect_to)
                    .await
                    .map_err(|err| match err {
                        AccountError::UserAlreadyExists => AccountError::EmailExists,
                        err => err,
                    })?;
                Ok(None)
            }
            ResendKind::PhoneChange => {
                let Some(new_phone) = nonempty(&user["new_phone"]) else {
                    return Ok(None);
                };
                let (_, message_id) = self.text_phone_change(user_id, new_phone).await?;
                Ok(Some(message_id))
            }
        };
        sent.map(|id| id.filter(|id| !id.is_empty()))
    }

    /// `GET /reauthenticate`: a nonce (6 digits) mailed to the caller's email, or texted to their
    /// phone when they have no email. The SMS message id, if a text was sent.
    pub async fn reauthenticate(
        &self,
        client: &Client,
        caller: &Caller,
    ) -> Result<Option<String>, AccountError> {
        let user = self.user(caller).await?;
        let email = nonempty(&user["email"]);
        let phone = nonempty(&user["phone"]);
        match (email, phone) {
            (None, None) => return Err(AccountError::ReauthenticationNoContact),
            (Some(_), _) if user["email_confirmed_at"].is_null() => {
                return Err(AccountError::ReauthenticationEmailUnconfirmed)
            }
            (None, Some(_)) if user["phone_confirmed_at"].is_null() => {
                return Err(AccountError::ReauthenticationPhoneUnconfirmed)
            }
            _ => {}
        }
        let key = email.or(phone).unwrap_or_default();
        self.limiter
            .check("reauthenticate", &client.ip, Some(key))?;
        let user_id = caller.user_id;
        let (nonce, fixed) = match (email, phone) {
            (None, Some(phone)) => code_for_phone(&self.settings.sms.test_otp, phone)?,
            _ => (random_code()?, false),
        };
        store_flow::issue_code(
            &self.pool,
            user_id,
            REAUTHENTICATION,
            &code_hash(user_id, &nonce),
            None,
        )
        .await?
        .ok_or(AccountError::UserFromTokenNotFound)?;
        match (email, phone) {
            (Some(email), _) => {
                let mail = Mail {
                    kind: "reauthentication",
                    to: email.to_owned(),
                    subject: "Confirm reauthentication".to_owned(),
                    body: format!("Enter the code: {nonce}\n"),
                };
                self.mailer.send(&self.pool, mail).await?;
                Ok(None)
            }
            (None, Some(_)) if fixed => Ok(None),
            (None, Some(phone)) => {
                let body = format!("Your reauthentication code is {nonce}");
                Ok(Some(self.sms.send(&self.pool, phone, &body).await?))
            }
            (None, None) => Ok(None),
        }
    }

    /// Before a password change: with `SLUICE_AUTH_SECURE_PASSWORD_CHANGE`, a session older
    /// than a day (or none) must bring the nonce of `GET /reauthenticate`, which is used up.
    pub(super) async fn check_reauthentication(
        &self,
        caller: &Caller,
        nonce: Option<&str>,
    ) -> Result<(), AccountError> {
        if !self.settings.secure_password_change {
            return Ok(());
        }
        let age = match caller.session_id {
            Some(session_id) => store_flow::session_age(&self.pool, session_id).await?,
            None => None,
        };
        if age.is_some_and(|age| age < RECENT_SESSION_SECS) {
            return Ok(());
        }
        let nonce = nonce
            .filter(|nonce| !nonce.is_empty())
            .ok_or(AccountError::ReauthenticationNeeded)?;
        let user_id = caller.user_id;
        let valid = self.settings.otp_expiry.as_secs_f64();
        let (_, stored) =
            store_flow::code_pending(&self.pool, Some(user_id), REAUTHENTICATION, None, valid)
                .await?
                .ok_or(AccountError::ReauthenticationNotValid)?;
        self.take_flow_code(user_id, REAUTHENTICATION, &stored, nonce)
            .await?
            .ok_or(AccountError::ReauthenticationNotValid)?;
        Ok(())
    }

    /// Checks `code` against `stored`, the hash of `user_id`'s live code on `channel` (a wrong
    /// one counts toward its guess limit), and uses the code up (applying a phone change): the
    /// user, `None` when the code is wrong or was used in between.
    async fn take_flow_code(
        &self,
        user_id: Uuid,
        channel: &str,
        stored: &str,
        code: &str,
    ) -> Result<Option<Value>, StoreError> {
        let offered = code_hash(user_id, code);
        if !constant_time_eq(offered.as_bytes(), stored.as_bytes()) {
            store_otp::otp_failed(&self.pool, user_id, channel, MAX_CODE_ATTEMPTS).await?;
            return Ok(None);
        }
        let valid = self.settings.otp_expiry.as_secs_f64();
        store_flow::take_code(&self.pool, user_id, channel, &offered, valid).await
    }

    /// `PUT /user {phone}`: texts a code to the new number (its fixed code for a test number);
    /// the number changes only when the code is verified. With autoconfirm it changes at once.
    /// The user, with `new_phone` while the change is pending.
    pub async fn change_phone(
        &self,
        client: &Client,
        caller: &Caller,
        phone: &str,
    ) -> Result<Value, AccountError> {
        let current = self.user(caller).await?;
        if current["phone"].as_str() == Some(phone) {
            return Ok(current);
        }
        self.limiter
            .check("phone_change", &client.ip, Some(phone))?;
        let user = if self.settings.autoconfirm {
            store_flow::set_phone(&self.pool, caller.user_id, phone)
                .await
                .map_err(phone_taken)?
                .ok_or(AccountError::UserFromTokenNotFound)?
        } else {
            self.text_phone_change(caller.user_id, phone).await?.0
        };
        self.with_factors(user).await
    }

    /// Stores a phone-change code for `phone` and texts it (not for a test number): the user
    /// and the message id ("" for a test number).
    async fn text_phone_change(
        &self,
        user_id: Uuid,
        phone: &str,
    ) -> Result<(Value, String), AccountError> {
        let (code, fixed) = code_for_phone(&self.settings.sms.test_otp, phone)?;
        let user = store_flow::issue_code(
            &self.pool,
            user_id,
            PHONE_CHANGE,
            &code_hash(user_id, &code),
            Some(phone),
        )
        .await
        .map_err(phone_taken)?
        .ok_or(AccountError::UserFromTokenNotFound)?;
        if fixed {
            return Ok((user, String::new()));
        }
        let body = format!("Your code is {code}");
        let message_id = self.sms.send(&self.pool, phone, &body).await?;
        Ok((user, message_id))
    }

    /// `POST /verify {type: phone_change, phone, token}`: the code texted to the new number
    /// applies it (confirmed) and starts a session.
    pub(super) async fn verify_phone_change(
        &self,
        client: &Client,
        phone: &str,
        code: &str,
    ) -> Result<Session, AccountError> {
        self.limiter.check("verify", &client.ip, Some(phone))?;
        let valid = self.settings.otp_expiry.as_secs_f64();
        let (user_id, stored) =
            store_flow::code_pending(&self.pool, None, PHONE_CHANGE, Some(phone), valid)
                .await?
                .ok_or(AccountError::OtpInvalid)?;
        self.take_flow_code(user_id, PHONE_CHANGE, &stored, code)
            .await
            .map_err(phone_taken)?
            .ok_or(AccountError::OtpInvalid)?;
        self.start(client, user_id, "otp").await
    }

    /// `POST /admin/generate_link` of type `email_change_current` or `email_change_new`: records
    /// the change of `email`'s account to `new_email` and answers the link that applies it (as
    /// `PUT /user` mails it; Sluice confirms an email change with one link, so either type's link
    /// applies it). Nothing is mailed.
    pub async fn generate_email_change_link(
        &self,
        kind: &str,
        email: &str,
        new_email: Option<&str>,
        redirect_to: Option<&str>,
    ) -> Result<IssuedLink, AccountError> {
        let purpose = match kind {
            "email_change_current" => "email_change_current",
            "email_change_new" => "email_change_new",
            _ => return Err(AccountError::Validation("Invalid email change link type")),
        };
        let email = normalize_email(email)?;
        let new_email = normalize_email(new_email.unwrap_or_default())?;
        let user = store_otp::user_by_contact(&self.pool, Some(&email), None)
            .await?
            .ok_or(AccountError::UserNotFound)?;
        let user_id = user_id_of(&user)?;
        let token = random_token()?;
        let hash = token_hash(&token);
        let user = match store::request_email_change(&self.pool, user_id, &new_email, &hash).await {
            Ok(user) => user.ok_or(AccountError::UserNotFound)?,
            Err(StoreError::EmailTaken) => return Err(AccountError::EmailExists),
            Err(err) => return Err(err.into()),
        };
        let redirect_to = self.settings.redirect_target(redirect_to);
        let link = format!(
            "{}/auth/v1/verify?token={token}&type=email_change&redirect_to={}",
            self.settings.external_url,
            encode_redirect(&redirect_to)
        );
        Ok(IssuedLink {
            user,
            code: token,
            link,
            hashed_token: hash,
            redirect_to,
            purpose,
        })
    }
}
