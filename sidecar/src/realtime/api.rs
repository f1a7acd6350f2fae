//! The HTTP broadcast API, as Supabase's: `POST /realtime/v1/api/broadcast` with a batch
//! `{"messages": [{topic, event, payload, private}]}` (what realtime-js's `channel.send()` uses
//! when the channel is not joined), and `POST /realtime/v1/api/broadcast/{topic}/events/{event}`
//! with the payload as the body (`channel.httpSend()`). Topics are channel names without the
//! `realtime:` prefix, as realtime-js sends them. Everything is checked before anything is sent,
//! so a batch goes out whole or not at all.

use serde_json::Value;

use super::protocol::UserPayload;

/// The prefix realtime-js puts before a channel's name on the socket.
const TOPIC_PREFIX: &str = "realtime:";

/// One message to broadcast, on its socket topic (`realtime:<name>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: String,
    pub event: String,
    pub payload: UserPayload,
}

/// What is wrong with a broadcast request. `ApiError` turns it into a response.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BroadcastApiError {
    #[error("the broadcast API needs a token: send an API key in the apikey header or Authorization: Bearer")]
    TokenRequired,
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON that is not a batch of messages (Supabase answers 422 too).
    #[error("{0}")]
    Invalid(String),
    #[error("message {index} is too large: {size} bytes once framed, at most {max} (a broadcast travels between sidecars in one NOTIFY)")]
    TooLarge {
        index: usize,
        size: usize,
        max: usize,
    },
    #[error("message {index}: private channels are not supported by Sluice yet (they need realtime authorization policies); send it with \"private\": false")]
    Private { index: usize },
}

impl BroadcastApiError {
    pub fn code(&self) -> &'static str {
        match self {
            BroadcastApiError::TokenRequired => "SLUICE132",
            BroadcastApiError::InvalidJson(_) => "SLUICE133",
            BroadcastApiError::Invalid(_) => "SLUICE134",
            BroadcastApiError::TooLarge { .. } => "SLUICE135",
            BroadcastApiError::Private { .. } => "SLUICE136",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            BroadcastApiError::TokenRequired => 401,
            BroadcastApiError::InvalidJson(_) => 400,
            BroadcastApiError::Invalid(_) => 422,
            BroadcastApiError::TooLarge { .. } => 413,
            BroadcastApiError::Private { .. } => 403,
        }
    }
}

fn topic(name: &str) -> String {
    format!("{TOPIC_PREFIX}{name}")
}

/// A required non-empty string field of message `index`.
fn text_field(message: &Value, index: usize, field: &str) -> Result<String, BroadcastApiError> {
    match message.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(BroadcastApiError::Invalid(
            format!("message {index}: {field} is required"),
        )),
        Some(_) => Err(BroadcastApiError::Invalid(format!(
            "message {index}: {field} must be a string"
        ))),
    }
}

/// The body of `POST /realtime/v1/api/broadcast`.
pub(crate) fn parse_batch(body: &[u8]) -> Result<Vec<Outgoing>, BroadcastApiError> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| BroadcastApiError::InvalidJson(e.to_string()))?;
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err(BroadcastApiError::Invalid(
            "the body must be an object with a \"messages\" array".to_owned(),
        ));
    };
    if messages.is_empty() {
        return Err(BroadcastApiError::Invalid(
            "\"messages\" is empty: nothing to broadcast".to_owned(),
        ));
    }
    let mut batch = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        if !message.is_object() {
            return Err(BroadcastApiError::Invalid(format!(
                "message {index} is not an object"
            )));
        }
        let name = text_field(message, index, "topic")?;
        let event = text_field(message, index, "event")?;
        let payload = match message.get("payload") {
            Some(payload @ Value::Object(_)) => payload.clone(),
            None | Some(Value::Null) => {
                return Err(BroadcastApiError::Invalid(format!(
                    "message {index}: payload is required"
                )))
            }
            Some(_) => {
                return Err(BroadcastApiError::Invalid(format!(
                    "message {index}: payload must be a JSON object"
                )))
            }
        };
        match message.get("private") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => return Err(BroadcastApiError::Private { index }),
            Some(_) => {
                return Err(BroadcastApiError::Invalid(format!(
                    "message {index}: private must be true or false"
                )))
            }
        }
        batch.push(Outgoing {
            topic: topic(&name),
            event,
            payload: UserPayload::Json(payload),
        });
    }
    Ok(batch)
}

/// `POST /realtime/v1/api/broadcast/{topic}/events/{event}[?private=true]`: the body is the
/// payload, raw bytes when `binary` (`application/octet-stream`), else a JSON object.
pub(crate) fn parse_single(
    name: &str,
    event: &str,
    private: bool,
    binary: bool,
    body: &[u8],
) -> Result<Outgoing, BroadcastApiError> {
    if private {
        return Err(BroadcastApiError::Private { index: 0 });
    }
    if name.is_empty() || event.is_empty() {
        return Err(BroadcastApiError::Invalid(
            "the topic and the event must not be empty".to_owned(),
        ));
    }
    let payload = if binary {
        UserPayload::Binary(body.to_vec())
    } else {
        match serde_json::from_slice(body) {
            Ok(payload @ Value::Object(_)) => UserPayload::Json(payload),
            Ok(_) => {
                return Err(BroadcastApiError::Invalid(
                    "the payload must be a JSON object".to_owned(),
                ))
            }
            Err(err) => return Err(BroadcastApiError::InvalidJson(err.to_string())),
        }
    };
    Ok(Outgoing {
        topic: topic(name),
        event: event.to_owned(),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<Vec<Outgoing>, BroadcastApiError> {
        parse_batch(body.to_string().as_bytes())
    }

    #[test]
    fn a_batch_becomes_messages_on_socket_topics() {
        let batch = parse(json!({"messages": [
            {"topic": "room", "event": "wave", "payload": {"n": 1}, "private": false},
            {"topic": "lobby", "event": "hi", "payload": {}},
        ]}))
        .unwrap();
        assert_eq!(
            batch,
            [
                Outgoing {
                    topic: "realtime:room".into(),
                    event: "wave".into(),
                    payload: UserPayload::Json(json!({"n": 1})),
                },
                Outgoing {
                    topic: "realtime:lobby".into(),
                    event: "hi".into(),
                    payload: UserPayload::Json(json!({})),
                },
            ]
        );
    }

    #[test]
    fn malformed_batches_are_refused_with_what_is_wrong() {
        assert!(matches!(
            parse_batch(b"{\"messages\": ["),
            Err(BroadcastApiError::InvalidJson(_))
        ));
        for (body, expected) in [
            (json!([]), "a \"messages\" array"),
            (json!({"messages": {}}), "a \"messages\" array"),
            (json!({"messages": []}), "is empty"),
            (json!({"messages": [1]}), "message 0 is not an object"),
            (
                json!({"messages": [{"event": "e", "payload": {}}]}),
                "message 0: topic is required",
            ),
            (
                json!({"messages": [{"topic": "t", "event": 5, "payload": {}}]}),
                "message 0: event must be a string",
            ),
            (
                json!({"messages": [{"topic": "t", "event": "e"}]}),
                "message 0: payload is required",
            ),
            (
                json!({"messages": [{"topic": "t", "event": "e", "payload": {}}, {"topic": "t", "event": "e", "payload": [1]}]}),
                "message 1: payload must be a JSON object",
            ),
            (
                json!({"messages": [{"topic": "t", "event": "e", "payload": {}, "private": "no"}]}),
                "private must be true or false",
            ),
        ] {
            match parse(body.clone()) {
                Err(err @ BroadcastApiError::Invalid(_)) => {
                    assert!(err.to_string().contains(expected), "{body}: {err}");
                    assert_eq!(err.http_status(), 422);
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn private_messages_are_refused() {
        let err = parse(json!({"messages": [
            {"topic": "t", "event": "e", "payload": {}},
            {"topic": "t", "event": "e", "payload": {}, "private": true},
        ]}))
        .unwrap_err();
        assert_eq!(err, BroadcastApiError::Private { index: 1 });
        assert_eq!(err.http_status(), 403);
        assert!(parse_single("t", "e", true, false, b"{}").is_err());
    }

    #[test]
    fn a_single_message_takes_json_objects_or_bytes() {
        let json = parse_single("room", "wave", false, false, b"{\"n\": 2}").unwrap();
        assert_eq!(json.topic, "realtime:room");
        assert_eq!(json.payload, UserPayload::Json(json!({"n": 2})));
        let bytes = parse_single("room", "wave", false, true, &[1, 2, 3]).unwrap();
        assert_eq!(bytes.payload, UserPayload::Binary(vec![1, 2, 3]));
        assert!(matches!(
            parse_single("room", "wave", false, false, b"[1]"),
            Err(BroadcastApiError::Invalid(_))
        ));
        assert!(matches!(
            parse_single("room", "wave", false, false, b"nope"),
            Err(BroadcastApiError::InvalidJson(_))
        ));
    }
}
