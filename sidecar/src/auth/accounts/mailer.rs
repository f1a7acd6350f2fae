//! Sending confirmation and recovery mail. Two mailers behind one interface:
//! - `Outbox` (the default): the message goes to the log and to the table `auth.mail_outbox`, a
//!   development inbox (and a queue for a relay of one's own);
//! - `Smtp`: sent through an SMTP server with `lettre`, configured by `SLUICE_SMTP_URL` (lettre's
//!   URL form: `smtps://user:pass@host:465`, or `smtp://user:pass@host:587?tls=required` for
//!   STARTTLS) and `SLUICE_SMTP_FROM`.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::store::{self, StoreError};
use crate::db::Pool;

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// `signup` or `recovery`.
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("SLUICE_SMTP_URL is not a valid SMTP URL: {0}")]
    Url(String),
    #[error("SLUICE_SMTP_FROM is not a valid mailbox: {0}")]
    From(String),
    #[error("the recipient {0:?} is not a valid mailbox")]
    To(String),
    #[error("could not build the message: {0}")]
    Build(String),
    #[error("the SMTP server refused or failed: {0}")]
    Smtp(String),
    #[error(transparent)]
    Outbox(#[from] StoreError),
}

pub enum Mailer {
    Outbox,
    Smtp(Box<Smtp>),
}

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Outbox => f.write_str("Mailer::Outbox"),
            Mailer::Smtp(smtp) => write!(f, "Mailer::Smtp(from {})", smtp.from),
        }
    }
}

impl Mailer {
    /// SMTP when `url` is given, else the outbox.
    pub fn from_settings(url: Option<&str>, from: &str) -> Result<Mailer, MailError> {
        let Some(url) = url else {
            return Ok(Mailer::Outbox);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            // lettre's message does not echo the URL (and its password).
            .map_err(|err| MailError::Url(err.to_string()))?
            .build();
        let from = from
            .parse()
            .map_err(|err: lettre::address::AddressError| MailError::From(err.to_string()))?;
        Ok(Mailer::Smtp(Box::new(Smtp { transport, from })))
    }

    pub async fn send(&self, pool: &Pool, mail: Mail) -> Result<(), MailError> {
        match self {
            Mailer::Outbox => {
                tracing::info!(
                    kind = mail.kind,
                    to = %mail.to,
                    subject = %mail.subject,
                    "mail (outbox; set SLUICE_SMTP_URL to send it):\n{}",
                    mail.body
                );
                store::enqueue_mail(pool, &mail).await?;
                Ok(())
            }
            Mailer::Smtp(smtp) => {
                let Smtp { transport, from } = smtp.as_ref();
                let to: Mailbox = mail
                    .to
                    .parse()
                    .map_err(|_| MailError::To(mail.to.clone()))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(mail.subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.body)
                    .map_err(|err| MailError::Build(err.to_string()))?;
                transport
                    .send(message)
                    .await
                    .map_err(|err| MailError::Smtp(err.to_string()))?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_choose_the_mailer() {
        assert!(matches!(
            Mailer::from_settings(None, "x").unwrap(),
            Mailer::Outbox
        ));
        let smtp = Mailer::from_settings(
            Some("smtp://user:pw@127.0.0.1:2525"),
            "Sluice <noreply@example.com>",
        )
        .unwrap();
        assert!(matches!(smtp, Mailer::Smtp(_)));
        assert!(matches!(
            Mailer::from_settings(Some("http://nope"), "a@b.c"),
            Err(MailError::Url(_))
        ));
        assert!(matches!(
            Mailer::from_settings(Some("smtp://127.0.0.1"), "not a mailbox"),
            Err(MailError::From(_))
        ));
    }
}
