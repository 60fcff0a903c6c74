//! Small text rules every part applies the same way: how much of a foreign string an
//! error quotes, and what counts as a user id in JSON.

use serde_json::Value;

/// At most `max` characters of `s`, with `…` when cut (for quoting input in errors).
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// A user id as the Mediboy API and tokens write it: an integer or a non-empty string.
pub fn user_id(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truncates_by_characters_not_bytes() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo", 2), "hé…");
    }

    #[test]
    fn user_ids_are_integers_or_non_empty_strings() {
        assert_eq!(user_id(&json!(42)), Some("42".into()));
        assert_eq!(user_id(&json!("u-7")), Some("u-7".into()));
        for not_an_id in [json!(42.0), json!(""), json!({"id": 1}), json!(null), json!(true)] {
            assert_eq!(user_id(&not_an_id), None, "{not_an_id}");
        }
    }
}
