//! Success envelope: every JSON success body is `{"success": true, "data": ...}`.

use axum::Json;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always `true`.
    pub success: bool,
    pub data: T,
}

pub fn ok<T: Serialize>(data: T) -> Json<Envelope<T>> {
    Json(Envelope {
        success: true,
        data,
    })
}

pub fn created<T: Serialize>(data: T) -> (StatusCode, Json<Envelope<T>>) {
    (StatusCode::CREATED, ok(data))
}
