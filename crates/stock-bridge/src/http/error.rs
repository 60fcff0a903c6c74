//! [`ApiError`]: every refusal the HTTP API gives, as `{"message": ..., "errors": [...]}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use stock_protocol::{InvalidPayload, ItemError};

/// A refused request. None of these is ever a 500: they all describe the client's input.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Forbidden: this source address may not broadcast")]
    Forbidden,
    #[error("Unauthorized: a valid API key is required (Authorization: Bearer <key> or X-API-Key: <key>)")]
    Unauthorized,
    #[error("Too many requests: the limit is {0} broadcasts per second")]
    RateLimited(u32),
    #[error("Unsupported media type: send Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("Payload too large: the limit is {0} bytes")]
    TooLarge(usize),
    #[error("Invalid payload")]
    Invalid(#[from] InvalidPayload),
    /// Some events of a batch are invalid: nothing of it was sent.
    #[error("Invalid batch: {} of {total} events are invalid; nothing was sent", .items.len())]
    InvalidBatch { total: usize, items: Vec<ItemError> },
    #[error(
        "Payload too large: a batch holds at most {max} events (STOCK_BRIDGE_BATCH_MAX), got {got}; nothing was sent"
    )]
    BatchTooLarge { max: usize, got: usize },
    #[error("Invalid payload: the request body could not be read ({0})")]
    UnreadableBody(String),
    #[error("Request timeout: the body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("Service unavailable: {0}")]
    Unavailable(String),
    #[error("Not found: the fleet view is off (set STOCK_BRIDGE_SUPPORT_KEY)")]
    FleetOff,
    #[error(
        "Unauthorized: the support key is required (Authorization: Bearer <support key> or X-Support-Key: <support key>)"
    )]
    NotSupport,
    #[error("Bad request: {0}")]
    BadQuery(String),
    #[error("Not found: no till {0:?} in the fleet")]
    NoSuchTill(String),
    #[error("Conflict: {0}")]
    TillNotOnline(String),
    #[error("Gateway timeout: {0}")]
    TillDidNotAnswer(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge(_) | ApiError::BatchTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) | ApiError::InvalidBatch { .. } | ApiError::UnreadableBody(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::FleetOff | ApiError::NoSuchTill(_) => StatusCode::NOT_FOUND,
            ApiError::NotSupport => StatusCode::UNAUTHORIZED,
            ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::TillNotOnline(_) => StatusCode::CONFLICT,
            ApiError::TillDidNotAnswer(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The label used in the `rejected` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Forbidden => "forbidden",
            ApiError::Unauthorized => "unauthorized",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::TooLarge(_) | ApiError::BatchTooLarge { .. } => "too_large",
            ApiError::Invalid(_) | ApiError::InvalidBatch { .. } | ApiError::UnreadableBody(_) => "invalid",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::FleetOff => "fleet_off",
            ApiError::NotSupport => "not_support",
            ApiError::BadQuery(_) => "bad_query",
            ApiError::NoSuchTill(_) => "no_such_till",
            ApiError::TillNotOnline(_) => "till_not_online",
            ApiError::TillDidNotAnswer(_) => "till_did_not_answer",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self {
            ApiError::Invalid(e) => json!({"message": "Invalid payload", "errors": e.errors}),
            ApiError::InvalidBatch { items, .. } => {
                let errors: Vec<String> = items
                    .iter()
                    .flat_map(|item| item.errors.iter().map(move |e| format!("events[{}]: {e}", item.index)))
                    .collect();
                json!({"message": self.to_string(), "errors": errors, "items": items})
            }
            ApiError::UnreadableBody(why) => {
                json!({"message": "Invalid payload", "errors": [format!("the request body could not be read: {why}")]})
            }
            other => json!({"message": other.to_string()}),
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let ApiError::RateLimited(_) = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
