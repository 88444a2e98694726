//! The OpenAPI document's frame; each route module contributes its paths.

use std::sync::Arc;

use axum::{Extension, Json};
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "MAS backend API", description = "REST API of the MAS / Mr. Mentor platform"),
    modifiers(&BearerAuth),
    // Referenced only from parameters, which utoipa does not collect on its own.
    components(schemas(
        crate::error::ErrorBody,
        crate::error::ErrorDetail,
        crate::http::payments::CatalogueKind,
        crate::services::payments::Status
    ))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        }
    }
}

pub fn base_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The complete document of every API route, as served at `/api/openapi.json` and
/// printed by `mas-server openapi`.
pub fn document() -> Value {
    complete(super::api_routes().split_for_parts().1)
}

/// The statuses every route of a kind can answer, whatever its handler does: added here
/// once instead of on each `#[utoipa::path]`, so a new route cannot forget them.
/// - a bearer-secured route: 401 (the `AuthUser` extractor runs before the handler);
/// - a route with a body: 400 (malformed JSON/form, or the wrong content type: the body
///   extractors answer 400, see `extract.rs`) and 413 (`BODY_LIMIT_BYTES`);
/// - a route with path parameters: 400 (malformed, e.g. not a UUID) and 404;
/// - a route with query parameters: 400 (malformed or out of the documented bounds).
///
/// Also adds OpenAPI links from each create operation to the operations on the resource
/// it created (read/update/delete and sub-resources), so clients and the stateful
/// contract test (`scripts/contract`) can follow them.
///
/// The result stays JSON: utoipa's model cannot hold everything added here (e.g. `anyOf`
/// next to `properties`), so it is not converted back.
pub fn complete(document: utoipa::openapi::OpenApi) -> Value {
    // Serializing utoipa's own model cannot fail (string keys, no non-finite floats).
    let mut value = serde_json::to_value(&document).unwrap_or_default();
    if let Some(schema) = value.pointer_mut("/components/schemas/CreateUpload") {
        *schema = super::uploads::create_upload_schema();
    }
    if let Some(schema) = value.pointer_mut("/components/schemas/AnalysisRequest") {
        *schema = crate::services::resume_analysis::request_schema();
    }
    openapi_path_templates(&mut value);
    forbid_nul(&mut value);
    complete_responses(&mut value);
    add_links(&mut value);
    value
}

/// axum's catch-all segment `{*rest}` (utoipa-axum routes by the documented path) is
/// `{rest}` in OpenAPI, where the parameter is declared by that name.
fn openapi_path_templates(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let catch_all: Vec<String> = paths.keys().filter(|k| k.contains("{*")).cloned().collect();
    for key in catch_all {
        if let Some(item) = paths.remove(&key) {
            paths.insert(key.replace("{*", "{"), item);
        }
    }
}

/// Any string without NUL: the body and query extractors refuse NUL anywhere (see
/// `extract.rs`), so every free-form string of a request says so.
const NO_NUL: &str = r"^[^\u0000]*$";

/// Component: any JSON value whose strings hold no NUL (undeclared body members).
const NUL_FREE_VALUE: &str = "NulFreeValue";

fn forbid_nul(doc: &mut Value) {
    let this = json!({"$ref": format!("#/components/schemas/{NUL_FREE_VALUE}")});
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.insert(
            NUL_FREE_VALUE.into(),
            json!({
                "description": "Any JSON value without NUL in its strings",
                "anyOf": [
                    {"type": "string", "pattern": NO_NUL},
                    {"type": ["number", "boolean", "null"]},
                    {"type": "array", "items": this},
                    {"type": "object", "additionalProperties": this, "propertyNames": {"pattern": NO_NUL}}
                ]
            }),
        );
    }
    let mut bodies: Vec<String> = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            for method in METHODS {
                let Some(op) = item.get_mut(method) else {
                    continue;
                };
                if let Some(content) = op
                    .pointer("/requestBody/content")
                    .and_then(Value::as_object)
                {
                    for media in content.values() {
                        if let Some(name) = media
                            .pointer("/schema/$ref")
                            .and_then(Value::as_str)
                            .and_then(|r| r.strip_prefix("#/components/schemas/"))
                        {
                            bodies.push(name.to_string());
                        }
                    }
                }
                if let Some(content) = op
                    .pointer_mut("/requestBody/content")
                    .and_then(Value::as_object_mut)
                {
                    for media in content.values_mut() {
                        if let Some(schema) = media.get_mut("schema") {
                            no_nul_strings(schema);
                        }
                    }
                }
                for param in op
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if param.get("in").and_then(Value::as_str) == Some("query")
                        && let Some(schema) = param.get_mut("schema")
                    {
                        no_nul_strings(schema);
                        // A query parameter is text or absent; it cannot be JSON null.
                        if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
                            types.retain(|t| t != "null");
                            if let [only] = types.as_slice() {
                                let only = only.clone();
                                schema["type"] = only;
                            }
                        }
                    }
                }
            }
        }
    }
    for name in bodies {
        if let Some(schema) = doc.pointer_mut(&format!("/components/schemas/{}", escape(&name))) {
            no_nul_strings(schema);
        }
    }
}

/// Adds [`NO_NUL`] to every string schema below `schema` that has no pattern, enum or
/// format of its own (those already exclude NUL).
fn no_nul_strings(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let is_string = match object.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
        _ => false,
    };
    if is_string
        && !object.contains_key("pattern")
        && !object.contains_key("enum")
        && !object.contains_key("format")
    {
        object.insert("pattern".into(), json!(NO_NUL));
    }
    if let Some(props) = object.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(no_nul_strings);
        // Undeclared members are ignored, but the extractor still reads (and checks) them.
        if !object.contains_key("additionalProperties") {
            object.insert(
                "additionalProperties".into(),
                json!({"$ref": format!("#/components/schemas/{NUL_FREE_VALUE}")}),
            );
            object.insert("propertyNames".into(), json!({"pattern": NO_NUL}));
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(items) = object.get_mut(key).and_then(Value::as_array_mut) {
            items.iter_mut().for_each(no_nul_strings);
        }
    }
    if let Some(items) = object.get_mut("items") {
        no_nul_strings(items);
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn complete_responses(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        for method in METHODS {
            let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) else {
                continue;
            };
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            let has_body = op.contains_key("requestBody");
            let params: Vec<String> = op
                .get("parameters")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p.get("in").and_then(Value::as_str).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let mut add: Vec<(&str, &str)> = Vec::new();
            if secured {
                add.push(("401", "Missing, invalid or expired bearer token"));
            }
            if has_body {
                add.push(("400", "Malformed or invalid request body"));
                add.push(("413", "Request body larger than the limit"));
            }
            if params.iter().any(|p| p == "path") {
                add.push(("400", "Malformed path parameter"));
                add.push(("404", "Not found"));
            }
            if params.iter().any(|p| p == "query") {
                add.push(("400", "Malformed or out-of-range query parameter"));
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(responses) = responses {
                for (status, description) in add {
                    responses
                        .entry(status)
                        .or_insert_with(|| error_response(description));
                }
                // Every error answer carries the error body, also where a route listed
                // the status without one.
                for (status, response) in responses.iter_mut() {
                    let error = status.starts_with('4') || status.starts_with('5');
                    if let Some(response) = response.as_object_mut()
                        && error
                        && !response.contains_key("content")
                    {
                        let full = error_response("");
                        response.insert("content".into(), full["content"].clone());
                        if response
                            .get("description")
                            .and_then(Value::as_str)
                            .is_none_or(str::is_empty)
                        {
                            response.insert("description".into(), json!("Error"));
                        }
                    }
                }
            }
        }
    }
}

/// `POST /a` answering 201/202 links to every operation under `/a/{x}` (x from the created
/// object's `id`); path parameters the create shares with the target come from its request.
fn add_links(doc: &mut Value) {
    let Some(paths) = doc.get("paths").and_then(Value::as_object).cloned() else {
        return;
    };
    let mut links: Vec<(String, String, String, Value)> = Vec::new();
    for (path, item) in &paths {
        let Some(create) = item.get("post") else {
            continue;
        };
        let Some(status) = ["201", "202"]
            .into_iter()
            .find(|s| create.pointer(&format!("/responses/{s}")).is_some())
        else {
            continue;
        };
        let mut targets: Vec<(String, Value)> = Vec::new();
        for (target, target_item) in &paths {
            let Some(rest) = target.strip_prefix(&format!("{path}/{{")) else {
                continue;
            };
            let Some((new_param, _)) = rest.split_once('}') else {
                continue;
            };
            for method in METHODS {
                if let Some(op) = target_item.get(method) {
                    targets.push((new_param.to_string(), op.clone()));
                }
            }
        }
        targets.extend(extra_link_targets(path, &paths));
        for (new_param, op) in targets {
            let Some(operation_id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            let mut parameters = serde_json::Map::new();
            for p in op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if p.get("in").and_then(Value::as_str) != Some("path") {
                    continue;
                }
                let Some(name) = p.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let source = if name == new_param {
                    "$response.body#/data/id".to_string()
                } else {
                    format!("$request.path.{name}")
                };
                parameters.insert(name.to_string(), Value::String(source));
            }
            links.push((
                path.clone(),
                status.to_string(),
                operation_id.to_string(),
                json!({"operationId": operation_id, "parameters": parameters}),
            ));
        }
    }
    for (path, status, operation_id, link) in links {
        if let Some(response) = doc
            .pointer_mut(&format!("/paths/{}/post/responses/{status}", escape(&path)))
            .and_then(Value::as_object_mut)
            && let Some(map) = response
                .entry("links")
                .or_insert_with(|| json!({}))
                .as_object_mut()
        {
            map.insert(operation_id, link);
        }
    }
}

/// Resources created under one path and used under another.
fn extra_link_targets(path: &str, paths: &serde_json::Map<String, Value>) -> Vec<(String, Value)> {
    let related: &[(&str, &str, &str)] = &[
        // A booking made by `POST /api/slots/{id}/book` is cancelled by its own id.
        ("/api/slots/{id}/book", "/api/bookings/{id}/cancel", "post"),
        // A batch created by `POST /api/batches` can get rows imported.
        ("/api/batches", "/api/admin/batches/{id}/import", "post"),
    ];
    related
        .iter()
        .filter(|(from, _, _)| *from == path)
        .filter_map(|(_, to, method)| paths.get(*to).and_then(|item| item.get(*method)))
        .map(|op| ("id".to_string(), op.clone()))
        .collect()
}

/// JSON pointer escaping of one reference token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
async fn openapi_json(Extension(document): Extension<Arc<Value>>) -> Json<Value> {
    Json(document.as_ref().clone())
}
