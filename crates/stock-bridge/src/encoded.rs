//! A relayed event encoded once, and a run of them as it crosses Redis.
//!
//! An event sent to 10,000 sockets was once serialized 10,000 times (socketioxide's `emit`
//! encodes for each socket), each copy a fresh allocation held in that socket's queue until
//! its writer ran. Now it is encoded once, here, and every socket is handed a clone of the
//! same bytes (`Str` is reference-counted `Bytes`); per socket there is only the byte
//! accounting and the handoff (issue 26). In cluster mode the run crosses Redis in a byte
//! form that carries those packets as they are, so a node receiving it slices them out of
//! the message instead of parsing and encoding again.
//!
//! # Layout
//! - [`EncodedEvent`]: a Socket.IO EVENT packet for the `/` namespace, as socketioxide's
//!   common parser writes it (`2["add_stock",{…},{"seq":…}]`; a test holds the two to the
//!   same bytes), with its delivery sequence and the size of its WebSocket frame.
//! - [`RunMessage`]: the rooms and events of a run; [`RunMessage::encode`] and
//!   [`RunMessage::decode`] give and read its text form on the cluster channel:
//!   `stock-bridge run 1\n`, the room count, each room as `<len>:<room>`, the event count,
//!   then each event as `<seq or ->,<len>:<packet>`, every item ending in `\n`.

use crate::accounting::ws_frame_len;
use serde_json::value::RawValue;
use socketioxide_core::{Str, Value};
use stock_protocol::DeliveryMeta;

/// One event, encoded once for every socket it goes to.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    /// The Socket.IO packet (without Engine.IO's `4`, which its writer adds).
    packet: Str,
    /// Its sequence, when it has one (an `add_stock` to everyone).
    seq: Option<u64>,
}

impl EncodedEvent {
    /// `event` with its payload as posted and its delivery position when it has one: the
    /// arguments the client's handler gets are `(data)` or `(data, meta)`.
    pub fn new(event: &str, data: &RawValue, meta: Option<&DeliveryMeta>) -> Self {
        let name = serde_json::to_string(event).expect("a string serializes");
        let meta_json = meta.map(|m| serde_json::to_string(m).expect("DeliveryMeta serializes"));
        let meta_len = meta_json.as_ref().map_or(0, |m| 1 + m.len());
        let mut packet = String::with_capacity(2 + name.len() + 1 + data.get().len() + meta_len + 1);
        packet.push_str("2[");
        packet.push_str(&name);
        packet.push(',');
        packet.push_str(data.get());
        if let Some(meta) = &meta_json {
            packet.push(',');
            packet.push_str(meta);
        }
        packet.push(']');
        EncodedEvent { packet: Str::from(packet), seq: meta.map(|m| m.seq) }
    }

    /// Its delivery sequence, when it has one.
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// The Socket.IO packet as text.
    pub fn packet(&self) -> &str {
        self.packet.as_str()
    }

    /// The bytes of the WebSocket frame that carries it (Engine.IO's `4` and the header).
    pub fn frame_len(&self) -> u64 {
        ws_frame_len(1 + self.packet.as_bytes().len())
    }

    /// What socketioxide's `send_raw` takes: a clone of the shared bytes, no copy.
    pub fn value(&self) -> Value {
        Value::Str(self.packet.clone(), None)
    }
}

/// A run of events for the same recipients (everyone when `rooms` is empty), as one
/// message on the cluster's channel.
#[derive(Debug)]
pub struct RunMessage {
    pub rooms: Vec<String>,
    pub events: Vec<EncodedEvent>,
}

/// The first line of every run message (its format's name and version).
pub const RUN_HEADER: &str = "stock-bridge run 1\n";

/// Why bytes from the cluster channel are not a run (they are logged and dropped).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RunError {
    #[error("not UTF-8 text")]
    NotText,
    #[error("it does not start with {RUN_HEADER:?} (another program, or another version of the bridge?)")]
    UnknownFormat,
    #[error("it ends early or a length is wrong, at byte {0}")]
    Truncated(usize),
    #[error("a number is missing or malformed at byte {0}")]
    BadNumber(usize),
    #[error("event {0} is not a Socket.IO event packet")]
    NotAnEvent(usize),
    #[error("{0} bytes left over after the last event")]
    TrailingBytes(usize),
}

impl RunMessage {
    /// Its text form (see the module docs).
    pub fn encode(rooms: &[String], events: &[EncodedEvent]) -> Vec<u8> {
        let size = RUN_HEADER.len()
            + 24
            + rooms.iter().map(|r| r.len() + 12).sum::<usize>()
            + events.iter().map(|e| e.packet.as_bytes().len() + 34).sum::<usize>();
        let mut out = String::with_capacity(size);
        out.push_str(RUN_HEADER);
        let push_field = |out: &mut String, text: &str| {
            out.push_str(&text.len().to_string());
            out.push(':');
            out.push_str(text);
            out.push('\n');
        };
        out.push_str(&format!("{}\n", rooms.len()));
        for room in rooms {
            push_field(&mut out, room);
        }
        out.push_str(&format!("{}\n", events.len()));
        for event in events {
            match event.seq {
                Some(seq) => out.push_str(&seq.to_string()),
                None => out.push('-'),
            }
            out.push(',');
            push_field(&mut out, event.packet());
        }
        out.into_bytes()
    }

    /// Reads a message of the cluster's channel; each event's packet is a slice of it (no
    /// copy). Anything else is an error, never a panic.
    pub fn decode(bytes: Vec<u8>) -> Result<RunMessage, RunError> {
        let text = String::from_utf8(bytes).map_err(|_| RunError::NotText)?;
        if !text.starts_with(RUN_HEADER) {
            return Err(RunError::UnknownFormat);
        }
        let whole = Str::from(text);
        let mut reader = Reader { text: whole.as_str(), pos: RUN_HEADER.len() };
        let room_count = reader.count()?;
        let mut rooms = Vec::with_capacity(room_count.min(reader.left() / 3));
        for _ in 0..room_count {
            let range = reader.field()?;
            rooms.push(reader.text[range].to_owned());
        }
        let event_count = reader.count()?;
        let mut events = Vec::with_capacity(event_count.min(reader.left() / 5));
        for index in 0..event_count {
            let seq = if reader.text[reader.pos..].starts_with("-,") {
                reader.pos += 2;
                None
            } else {
                Some(reader.number(b',')?)
            };
            let range = reader.field()?;
            let packet = &reader.text[range.clone()];
            if !(packet.starts_with("2[") && packet.ends_with(']')) {
                return Err(RunError::NotAnEvent(index));
            }
            events.push(EncodedEvent { packet: whole.slice(range), seq });
        }
        match reader.left() {
            0 => Ok(RunMessage { rooms, events }),
            left => Err(RunError::TrailingBytes(left)),
        }
    }
}

/// A position in a run message's text.
struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.text.len() - self.pos
    }

    /// Decimal digits up to `end` (consumed).
    fn number(&mut self, end: u8) -> Result<u64, RunError> {
        let start = self.pos;
        let rest = &self.text.as_bytes()[start..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 20 || rest.get(digits) != Some(&end) {
            return Err(RunError::BadNumber(start));
        }
        self.pos += digits + 1;
        self.text[start..start + digits].parse().map_err(|_| RunError::BadNumber(start))
    }

    /// A count or a length: a number that fits in memory.
    fn size(&mut self, end: u8) -> Result<usize, RunError> {
        let start = self.pos;
        usize::try_from(self.number(end)?).map_err(|_| RunError::BadNumber(start))
    }

    /// A count of items, ending its line.
    fn count(&mut self) -> Result<usize, RunError> {
        self.size(b'\n')
    }

    /// `<len>:<text>\n`: the range of the text.
    fn field(&mut self) -> Result<std::ops::Range<usize>, RunError> {
        let len = self.size(b':')?;
        let start = self.pos;
        let end = start.checked_add(len).filter(|&end| end < self.text.len()).ok_or(RunError::Truncated(start))?;
        if !self.text.is_char_boundary(end) || self.text.as_bytes()[end] != b'\n' {
            return Err(RunError::Truncated(end));
        }
        self.pos = end + 1;
        Ok(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socketioxide_core::packet::Packet;
    use socketioxide_core::parser::Parse;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    fn meta(seq: u64) -> DeliveryMeta {
        DeliveryMeta { seq, epoch: "e1".into() }
    }

    /// What socketioxide's `emit(event, (data, meta))` writes, through its own parser.
    fn as_socketioxide_encodes(event: &str, data: &RawValue, meta: Option<&DeliveryMeta>) -> String {
        let parser = socketioxide_parser_common::CommonParser;
        let value = match meta {
            Some(meta) => parser.encode_value(&(data, meta), Some(event)),
            None => parser.encode_value(&(data,), Some(event)),
        }
        .unwrap();
        match parser.encode(Packet::event("/", value)) {
            Value::Str(packet, None) => packet.as_str().to_owned(),
            other => panic!("the common parser gave {other:?}"),
        }
    }

    #[test]
    fn the_packet_is_byte_for_byte_what_socketioxide_would_have_sent() {
        let data = raw(r#"{"product_id":7,"name":"Napa \"extra\" é"}"#);
        for (event, meta) in [("add_stock", Some(meta(42))), ("sale_mode", None), ("we\"ird", None)] {
            let ours = EncodedEvent::new(event, &data, meta.as_ref());
            assert_eq!(ours.packet(), as_socketioxide_encodes(event, &data, meta.as_ref()));
            assert_eq!(ours.seq(), meta.as_ref().map(|m| m.seq));
            // The frame counted for it: "4" + packet in one WebSocket frame.
            assert_eq!(ours.frame_len(), 2 + 1 + ours.packet().len() as u64);
        }
        let packet = EncodedEvent::new("add_stock", &raw(r#"{"a":1}"#), Some(&meta(4)));
        assert_eq!(packet.packet(), r#"2["add_stock",{"a":1},{"seq":4,"epoch":"e1"}]"#);
    }

    #[test]
    fn a_run_crosses_the_channel_unchanged_and_its_packets_share_the_message() {
        let events = vec![
            EncodedEvent::new("add_stock", &raw(r#"{"a":"x\ny"}"#), Some(&meta(1))),
            EncodedEvent::new("sale_mode", &raw(r#"{"mode":"peak"}"#), None),
            EncodedEvent::new("add_stock", &raw(r#"{"b":"ü:12\n"}"#), Some(&meta(u64::MAX))),
        ];
        for rooms in [vec![], vec!["user:7".to_owned(), "user:8\nuser:9".to_owned()]] {
            let bytes = RunMessage::encode(&rooms, &events);
            let run = RunMessage::decode(bytes).unwrap();
            assert_eq!(run.rooms, rooms);
            let got: Vec<(&str, Option<u64>)> = run.events.iter().map(|e| (e.packet(), e.seq())).collect();
            let sent: Vec<(&str, Option<u64>)> = events.iter().map(|e| (e.packet(), e.seq())).collect();
            assert_eq!(got, sent);
        }
        let empty = RunMessage::decode(RunMessage::encode(&[], &[])).unwrap();
        assert!(empty.rooms.is_empty() && empty.events.is_empty());
    }

    #[test]
    fn bytes_that_are_not_a_run_are_refused_by_kind_without_a_panic() {
        let good = RunMessage::encode(&["user:1".into()], &[EncodedEvent::new("e", &raw("1"), Some(&meta(3)))]);
        let text = String::from_utf8(good.clone()).unwrap();
        let cases: Vec<(Vec<u8>, RunError)> = vec![
            (vec![0xff, 0xfe], RunError::NotText),
            (br#"{"rooms":[],"events":[]}"#.to_vec(), RunError::UnknownFormat),
            (text.replace("6:user:1", "60:user:1").into_bytes(), RunError::Truncated(24)),
            (text.replace("\n1\n3,", "\n999999999999999999999\n3,").into_bytes(), RunError::BadNumber(30)),
            (text.replace("3,", "x,").into_bytes(), RunError::BadNumber(32)),
            (text.replace("2[\"e\",1", "1[\"e\",1").into_bytes(), RunError::NotAnEvent(0)),
            ([good.as_slice(), b"more"].concat(), RunError::TrailingBytes(4)),
            (good[..good.len() - 3].to_vec(), RunError::Truncated(37)),
            // A length that ends inside a character.
            (format!("{RUN_HEADER}1\n1:é\n0\n").into_bytes(), RunError::Truncated(24)),
        ];
        for (bytes, want) in cases {
            assert_eq!(RunMessage::decode(bytes.clone()).unwrap_err(), want, "{:?}", String::from_utf8_lossy(&bytes));
        }
    }
}
