//! The wire format of realtime-js (Phoenix channels), in both serializers the client offers:
//! - `vsn=1.0.0`: every frame is a JSON object `{join_ref, ref, topic, event, payload}`;
//! - `vsn=2.0.0` (the client's default): a JSON array `[join_ref, ref, topic, event, payload]`, and
//!   broadcasts as binary frames (client → server kind 3 "user broadcast push", server → client
//!   kind 4 "user broadcast"), laid out as in realtime-js's `lib/serializer.js`.

use serde_json::{json, Value};

/// The serializer a socket asked for with its `vsn` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vsn {
    V1,
    V2,
}

impl Vsn {
    /// `None` for a version we do not speak; no parameter means 1.0.0, as in Phoenix.
    pub fn parse(vsn: Option<&str>) -> Option<Vsn> {
        match vsn {
            None | Some("1.0.0") => Some(Vsn::V1),
            Some("2.0.0") => Some(Vsn::V2),
            Some(_) => None,
        }
    }
}

/// One Phoenix message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// A broadcast's user payload: JSON, or raw bytes (an ArrayBuffer on the client).
#[derive(Debug, Clone, PartialEq)]
pub enum UserPayload {
    Json(Value),
    Binary(Vec<u8>),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum ProtocolError {
    #[error("the frame is not a valid {0} message")]
    Malformed(&'static str),
    #[error("binary frames of kind {0} are not understood")]
    UnknownBinaryKind(u8),
}

const KIND_USER_BROADCAST_PUSH: u8 = 3;
const KIND_USER_BROADCAST: u8 = 4;
const ENCODING_BINARY: u8 = 0;
const ENCODING_JSON: u8 = 1;

fn opt_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A text frame.
pub(crate) fn decode_text(vsn: Vsn, text: &str) -> Result<Message, ProtocolError> {
    let value: Value = serde_json::from_str(text).map_err(|_| ProtocolError::Malformed("JSON"))?;
    let (join_ref, msg_ref, topic, event, payload) = match (vsn, value) {
        (Vsn::V2, Value::Array(mut parts)) if parts.len() == 5 => {
            let payload = parts.pop().unwrap_or(Value::Null);
            let event = parts.pop().unwrap_or(Value::Null);
            let topic = parts.pop().unwrap_or(Value::Null);
            let msg_ref = parts.pop().unwrap_or(Value::Null);
            let join_ref = parts.pop().unwrap_or(Value::Null);
            (join_ref, msg_ref, topic, event, payload)
        }
        (Vsn::V1, Value::Object(mut map)) => {
            let mut take = |key: &str| map.remove(key).unwrap_or(Value::Null);
            (
                take("join_ref"),
                take("ref"),
                take("topic"),
                take("event"),
                take("payload"),
            )
        }
        (Vsn::V2, _) => return Err(ProtocolError::Malformed("2.0.0 array")),
        (Vsn::V1, _) => return Err(ProtocolError::Malformed("1.0.0 object")),
    };
    let (Value::String(topic), Value::String(event)) = (topic, event) else {
        return Err(ProtocolError::Malformed(
            "Phoenix (topic and event must be strings)",
        ));
    };
    Ok(Message {
        join_ref: opt_string(&join_ref),
        msg_ref: opt_string(&msg_ref),
        topic,
        event,
        payload,
    })
}

/// A binary frame: only the client's broadcast push exists. Returns the message with the user
/// payload split out, since a binary user payload has no JSON form.
pub(crate) fn decode_binary(bytes: &[u8]) -> Result<(Message, UserPayload), ProtocolError> {
    let malformed = ProtocolError::Malformed("binary broadcast");
    let (&kind, rest) = bytes
        .split_first()
        .ok_or(ProtocolError::Malformed("binary"))?;
    if kind != KIND_USER_BROADCAST_PUSH {
        return Err(ProtocolError::UnknownBinaryKind(kind));
    }
    let header = rest
        .get(..6)
        .ok_or(ProtocolError::Malformed("binary broadcast"))?;
    let lengths = [header[0], header[1], header[2], header[3], header[4]].map(usize::from);
    let encoding = header[5];
    let mut offset = 6;
    let mut fields = Vec::with_capacity(5);
    for len in lengths {
        let field = rest
            .get(offset..offset + len)
            .ok_or(ProtocolError::Malformed("binary broadcast"))?;
        fields.push(
            std::str::from_utf8(field).map_err(|_| ProtocolError::Malformed("binary broadcast"))?,
        );
        offset += len;
    }
    let body = &rest[offset..];
    let user = match encoding {
        ENCODING_JSON => UserPayload::Json(serde_json::from_slice(body).map_err(|_| malformed)?),
        ENCODING_BINARY => UserPayload::Binary(body.to_vec()),
        _ => return Err(ProtocolError::Malformed("binary broadcast")),
    };
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let mut payload = json!({"type": "broadcast", "event": fields[3]});
    if !fields[4].is_empty() {
        if let (Some(map), Ok(Value::Object(meta))) = (
            payload.as_object_mut(),
            serde_json::from_str::<Value>(fields[4]),
        ) {
            map.extend(meta);
        }
    }
    Ok((
        Message {
            join_ref: nonempty(fields[0]),
            msg_ref: nonempty(fields[1]),
            topic: fields[2].to_owned(),
            event: "broadcast".to_owned(),
            payload,
        },
        user,
    ))
}

/// A text frame for `message`.
pub(crate) fn encode(vsn: Vsn, message: &Message) -> String {
    match vsn {
        Vsn::V2 => json!([
            message.join_ref,
            message.msg_ref,
            message.topic,
            message.event,
            message.payload
        ])
        .to_string(),
        Vsn::V1 => json!({
            "join_ref": message.join_ref,
            "ref": message.msg_ref,
            "topic": message.topic,
            "event": message.event,
            "payload": message.payload,
        })
        .to_string(),
    }
}

/// The text around a payload that is already serialized JSON: `head + payload + tail` is a frame.
/// Change events are serialized once per event, and each subscriber's shell once per subscription.
pub(crate) fn shell(
    vsn: Vsn,
    join_ref: Option<&str>,
    topic: &str,
    event: &str,
) -> (String, &'static str) {
    let join_ref = serde_json::to_string(&join_ref).unwrap_or_else(|_| "null".into());
    let topic = Value::from(topic).to_string();
    let event = Value::from(event).to_string();
    match vsn {
        Vsn::V2 => (format!("[{join_ref},null,{topic},{event},"), "]"),
        Vsn::V1 => (
            format!("{{\"join_ref\":{join_ref},\"ref\":null,\"topic\":{topic},\"event\":{event},\"payload\":"),
            "}",
        ),
    }
}

/// A text frame whose payload is already serialized JSON.
#[cfg(test)]
pub(crate) fn encode_raw(
    vsn: Vsn,
    join_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &str,
) -> String {
    let (head, tail) = shell(vsn, join_ref, topic, event);
    format!("{head}{payload}{tail}")
}

/// The server's binary broadcast frame (kind 4). `None` when a field is longer than the format's
/// one-byte length allows; the caller then sends JSON.
pub(crate) fn encode_binary_broadcast(
    topic: &str,
    event: &str,
    user: &UserPayload,
) -> Option<Vec<u8>> {
    let (encoding, body) = match user {
        UserPayload::Json(value) => (ENCODING_JSON, serde_json::to_vec(value).ok()?),
        UserPayload::Binary(bytes) => (ENCODING_BINARY, bytes.clone()),
    };
    let topic_len = u8::try_from(topic.len()).ok()?;
    let event_len = u8::try_from(event.len()).ok()?;
    let mut frame = Vec::with_capacity(5 + topic.len() + event.len() + body.len());
    frame.extend([KIND_USER_BROADCAST, topic_len, event_len, 0, encoding]);
    frame.extend(topic.as_bytes());
    frame.extend(event.as_bytes());
    frame.extend(body);
    Some(frame)
}

/// `phx_reply` to `request`.
pub(crate) fn reply(request: &Message, status: &str, response: Value) -> Message {
    Message {
        join_ref: request.join_ref.clone(),
        msg_ref: request.msg_ref.clone(),
        topic: request.topic.clone(),
        event: "phx_reply".to_owned(),
        payload: json!({"status": status, "response": response}),
    }
}

/// A server push on a channel (no ref).
pub(crate) fn push(join_ref: Option<&str>, topic: &str, event: &str, payload: Value) -> Message {
    Message {
        join_ref: join_ref.map(str::to_owned),
        msg_ref: None,
        topic: topic.to_owned(),
        event: event.to_owned(),
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_serializers_round_trip() {
        let message = Message {
            join_ref: Some("1".into()),
            msg_ref: Some("2".into()),
            topic: "realtime:room".into(),
            event: "phx_join".into(),
            payload: json!({"config": {}}),
        };
        for vsn in [Vsn::V1, Vsn::V2] {
            assert_eq!(decode_text(vsn, &encode(vsn, &message)).unwrap(), message);
        }
        assert!(encode(Vsn::V2, &message).starts_with("[\"1\",\"2\","));
        assert!(decode_text(Vsn::V2, "{\"topic\":\"x\"}").is_err());
        assert!(decode_text(Vsn::V1, "[1,2,3,4,5]").is_err());
        assert!(decode_text(Vsn::V2, "[null,null,1,\"e\",{}]").is_err());
    }

    #[test]
    fn raw_frames_parse_as_the_same_message() {
        for vsn in [Vsn::V1, Vsn::V2] {
            let text = encode_raw(
                vsn,
                Some("j\"1"),
                "realtime:t",
                "postgres_changes",
                "{\"ids\":[1]}",
            );
            let message = decode_text(vsn, &text).unwrap();
            assert_eq!(message.join_ref.as_deref(), Some("j\"1"));
            assert_eq!(message.msg_ref, None);
            assert_eq!(message.payload, json!({"ids": [1]}));
        }
    }

    /// The bytes realtime-js 2.x's serializer produces for
    /// `{join_ref: "1", ref: "2", topic: "realtime:room", event: "broadcast",
    ///   payload: {type: "broadcast", event: "hi", payload: {n: 1}}}`.
    #[test]
    fn binary_broadcast_push_decodes() {
        let mut frame = vec![3, 1, 1, 13, 2, 0, 1];
        frame.extend(b"12realtime:roomhi{\"n\":1}");
        let (message, user) = decode_binary(&frame).unwrap();
        assert_eq!(message.topic, "realtime:room");
        assert_eq!(message.join_ref.as_deref(), Some("1"));
        assert_eq!(message.msg_ref.as_deref(), Some("2"));
        assert_eq!(message.payload["event"], "hi");
        assert_eq!(user, UserPayload::Json(json!({"n": 1})));
        assert!(decode_binary(&frame[..10]).is_err());
        assert_eq!(
            decode_binary(&[9]),
            Err(ProtocolError::UnknownBinaryKind(9))
        );
    }

    #[test]
    fn binary_broadcast_encodes_as_the_client_decodes_it() {
        let frame = encode_binary_broadcast("t", "ev", &UserPayload::Json(json!(1))).unwrap();
        assert_eq!(frame, b"\x04\x01\x02\x00\x01tev1");
        let long = "x".repeat(300);
        assert!(encode_binary_broadcast(&long, "e", &UserPayload::Binary(vec![])).is_none());
    }
}
