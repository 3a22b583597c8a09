use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bannin_proto::ApiError;

/// Every refusal the API gives: a status and a sentence saying what is wrong, as JSON `{"error": ...}`.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub message: String,
}

impl ApiFailure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiFailure {
        ApiFailure {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::NOT_FOUND, message)
    }
    /// The detail goes to the manager's log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> ApiFailure {
        tracing::error!("internal error: {detail:#}");
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the manager's log has the details",
        )
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ApiError {
                error: self.message,
            }),
        )
            .into_response()
    }
}

impl From<anyhow::Error> for ApiFailure {
    fn from(e: anyhow::Error) -> ApiFailure {
        ApiFailure::internal(e)
    }
}

impl From<tokio::task::JoinError> for ApiFailure {
    fn from(e: tokio::task::JoinError) -> ApiFailure {
        ApiFailure::internal(e)
    }
}

impl From<JsonRejection> for ApiFailure {
    fn from(r: JsonRejection) -> ApiFailure {
        ApiFailure::new(r.status(), format!("request body: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiFailure {
    fn from(r: QueryRejection) -> ApiFailure {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            format!("query string: {}", r.body_text()),
        )
    }
}

impl From<BytesRejection> for ApiFailure {
    fn from(r: BytesRejection) -> ApiFailure {
        let status = r.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "request body is larger than {} bytes",
                super::MAX_BODY_BYTES
            )
        } else {
            format!("request body: {}", r.body_text())
        };
        ApiFailure::new(status, message)
    }
}
