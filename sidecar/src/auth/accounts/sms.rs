//! Sending phone codes. Two senders behind one interface, as `mailer` has for mail:
//! - `Outbox` (the default): the message goes to the log and to the table `auth.sms_outbox`, a
//!   development inbox;
//! - `Twilio`: Twilio's Messages API (`POST {api}/2010-04-01/Accounts/{sid}/Messages.json`, HTTP
//!   basic auth with the account SID and auth token, a form body with `To`, `Body` and either
//!   `MessagingServiceSid` (an `MG...` id) or `From`), configured by `SLUICE_AUTH_SMS_PROVIDER=twilio`
//!   and `SLUICE_AUTH_SMS_TWILIO_*` (see `settings`). Any service that speaks that API works,
//!   through `SLUICE_AUTH_SMS_TWILIO_API_URL`.
//!
//! Test numbers (`SLUICE_AUTH_SMS_TEST_OTP`) are not sent to at all: their code is fixed.

use std::collections::HashMap;
use std::time::Duration;

use super::input::percent_encode;
use super::store::StoreError;
use super::store_otp;
use crate::db::Pool;

/// Which sender, from the settings.
#[derive(Clone, Default)]
pub enum SmsProvider {
    #[default]
    Outbox,
    Twilio {
        api_url: String,
        account_sid: String,
        auth_token: String,
        message_service_sid: String,
    },
}

impl std::fmt::Debug for SmsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmsProvider::Outbox => f.write_str("Outbox"),
            SmsProvider::Twilio {
                api_url,
                account_sid,
                ..
            } => write!(f, "Twilio({api_url}, {account_sid}, auth token hidden)"),
        }
    }
}

/// The SMS settings: the sender and the test numbers (E.164 digits) with their fixed codes.
#[derive(Debug, Clone, Default)]
pub struct SmsSettings {
    pub provider: SmsProvider,
    pub test_otp: HashMap<String, String>,
}

impl SmsSettings {
    /// Whether the chosen provider has every setting it needs.
    pub fn is_complete(&self) -> bool {
        match &self.provider {
            SmsProvider::Outbox => true,
            SmsProvider::Twilio {
                account_sid,
                auth_token,
                message_service_sid,
                ..
            } => [account_sid, auth_token, message_service_sid]
                .iter()
                .all(|value| !value.trim().is_empty()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("the SMS provider could not be reached: {0}")]
    Http(String),
    #[error("the SMS provider refused the message ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error(transparent)]
    Outbox(#[from] StoreError),
}

#[derive(Debug)]
pub enum SmsSender {
    Outbox,
    Twilio {
        http: reqwest::Client,
        url: String,
        account_sid: String,
        auth_token: String,
        sender: (&'static str, String),
    },
}

impl SmsSender {
    pub fn from_settings(settings: &SmsSettings) -> SmsSender {
        match &settings.provider {
            SmsProvider::Outbox => SmsSender::Outbox,
            SmsProvider::Twilio {
                api_url,
                account_sid,
                auth_token,
                message_service_sid,
            } => {
                let http = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap_or_default();
                let field = if message_service_sid.starts_with("MG") {
                    "MessagingServiceSid"
                } else {
                    "From"
                };
                SmsSender::Twilio {
                    http,
                    url: format!(
                        "{}/2010-04-01/Accounts/{}/Messages.json",
                        api_url.trim_end_matches('/'),
                        percent_encode(account_sid)
                    ),
                    account_sid: account_sid.clone(),
                    auth_token: auth_token.clone(),
                    sender: (field, message_service_sid.clone()),
                }
            }
        }
    }

    pub fn provider_name(&self) -> &'static str {
        match self {
            SmsSender::Outbox => "",
            SmsSender::Twilio { .. } => "twilio",
        }
    }

    /// Sends `body` to the phone `to` (E.164 digits); the message's id.
    pub async fn send(&self, pool: &Pool, to: &str, body: &str) -> Result<String, SmsError> {
        match self {
            SmsSender::Outbox => {
                tracing::info!(
                    to,
                    "SMS (outbox; set SLUICE_AUTH_SMS_PROVIDER to send it): {body}"
                );
                Ok(store_otp::enqueue_sms(pool, to, body).await?.to_string())
            }
            SmsSender::Twilio {
                http,
                url,
                account_sid,
                auth_token,
                sender,
            } => {
                let form = format!(
                    "To=%2B{}&Body={}&{}={}",
                    percent_encode(to),
                    percent_encode(body),
                    sender.0,
                    percent_encode(&sender.1)
                );
                let response = http
                    .post(url)
                    .basic_auth(account_sid, Some(auth_token))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("accept", "application/json")
                    .body(form)
                    .send()
                    .await
                    .map_err(|err| SmsError::Http(err.without_url().to_string()))?;
                let status = response.status().as_u16();
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|err| SmsError::Http(err.to_string()))?;
                let answer: serde_json::Value =
                    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                let failed = matches!(answer["status"].as_str(), Some("failed" | "undelivered"));
                if !(200..300).contains(&status) || failed {
                    let message = answer["message"]
                        .as_str()
                        .or(answer["error_message"].as_str())
                        .unwrap_or("no message")
                        .to_owned();
                    return Err(SmsError::Refused { status, message });
                }
                answer["sid"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| SmsError::Refused {
                        status,
                        message: "the answer has no message sid".into(),
                    })
            }
        }
    }
}
