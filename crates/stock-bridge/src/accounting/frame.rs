//! Frame sizes: what a packet the bridge hands to socketioxide costs on the wire, derived
//! here and nowhere else (a WebSocket frame's header, then Socket.IO's text encoding).

/// Size on the wire of a WebSocket text frame from the server (unmasked) carrying `payload` bytes.
pub fn ws_frame_len(payload: usize) -> u64 {
    let header = match payload {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    (payload + header) as u64
}

/// Size of the WebSocket frame carrying the Socket.IO event `42["event",data(,meta)]`, as
/// socketioxide writes it: counted from the parts, so the payload is not serialized again
/// to measure it. `event` is the name as it is, `data` and `meta` already JSON.
pub fn event_frame_len(event: &str, data: &str, meta: Option<&str>) -> u64 {
    let quoted_event = serde_json::to_string(event).map_or(0, |e| e.len());
    let meta_len = meta.map_or(0, |m| 1 + m.len());
    // "42" + "[" + "event" + "," + data (+ "," + meta) + "]"
    ws_frame_len(2 + 1 + quoted_event + 1 + data.len() + meta_len + 1)
}

/// Size of the WebSocket frame carrying an acknowledgement `43<id>[answer]` whose answer
/// is `answer_len` bytes of JSON: at least one digit of ack id (a lower bound).
pub fn ack_frame_len(answer_len: usize) -> u64 {
    // "43" + id (≥ 1 digit) + "[" + answer + "]"
    ws_frame_len(2 + 1 + 1 + answer_len + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_follow_the_websocket_header_lengths() {
        assert_eq!(ws_frame_len(0), 2);
        assert_eq!(ws_frame_len(125), 127);
        assert_eq!(ws_frame_len(126), 130);
        assert_eq!(ws_frame_len(65_535), 65_539);
        assert_eq!(ws_frame_len(65_536), 65_546);
    }
}
