//! A fake X API (axum on a loopback port): the filtered-stream rules endpoints (GET, and POST
//! with `add` / `delete`, answered as documented, refusing an unknown operator) and the stream,
//! answered by a [`Script`].

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{Call, Calls, Plan, Script, serve};

/// The rules endpoint.
const RULES: &str = "/2/tweets/search/stream/rules";
/// The stream endpoint, with its query.
const STREAM: &str = "/2/tweets/search/stream?";

#[derive(Debug)]
struct Rule {
    id: String,
    value: String,
    tag: Option<String>,
}

#[derive(Debug)]
struct ServerState {
    rules: Mutex<Vec<Rule>>,
    next_id: Mutex<u64>,
    script: Arc<Script>,
    /// The answer to rule requests instead of the normal one, if set.
    refuse_rules: Option<(u16, &'static str)>,
    calls: Calls,
}

/// A fake X API on a loopback port.
#[derive(Debug)]
pub struct FakeX {
    pub url: String,
    state: Arc<ServerState>,
}

impl FakeX {
    /// An API holding `rules` (id, value, tag), whose stream answers by `plans`, and whose rules
    /// endpoint answers `refuse_rules` (status, body) instead, if set.
    pub async fn start(
        rules: &[(&str, &str, Option<&str>)],
        plans: Vec<Plan>,
        refuse_rules: Option<(u16, &'static str)>,
    ) -> anyhow::Result<FakeX> {
        let state = Arc::new(ServerState {
            rules: Mutex::new(
                rules
                    .iter()
                    .map(|(id, value, tag)| Rule {
                        id: id.to_string(),
                        value: value.to_string(),
                        tag: tag.map(str::to_owned),
                    })
                    .collect(),
            ),
            next_id: Mutex::new(1_573_000_000_000_000_000),
            script: Script::new(plans),
            refuse_rules,
            calls: Calls::default(),
        });
        let app = Router::new()
            .route(RULES, get(rules_endpoint).post(rules_endpoint))
            .route("/2/tweets/search/stream", get(stream))
            .with_state(Arc::clone(&state));
        let url = serve(app).await?;
        Ok(FakeX { url, state })
    }

    /// Every request received.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.all()
    }

    /// The calls to the rules endpoint: (method, body).
    pub fn rule_calls(&self) -> Vec<(String, Option<Value>)> {
        self.state
            .calls
            .starting_with(RULES)
            .into_iter()
            .map(|c| (c.method, c.body))
            .collect()
    }

    /// The calls to the stream.
    pub fn stream_calls(&self) -> Vec<Call> {
        self.state.calls.starting_with(STREAM)
    }

    /// The server's rules: (value, tag).
    pub fn rules(&self) -> Vec<(String, Option<String>)> {
        self.state
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|r| (r.value.clone(), r.tag.clone()))
            .collect()
    }

    /// Drops the connection being served by a `ServeThenDrop` plan (now or when it comes).
    pub fn drop_connection(&self) {
        self.state.script.drop_connection();
    }
}

const SENT: &str = "2022-09-14T19:00:00.000Z";

/// `GET` and `POST /2/tweets/search/stream/rules`, answered as documented.
async fn rules_endpoint(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let is_post = request.method() == Method::POST;
    let call = state.calls.record(request).await;
    if let Some((code, body)) = state.refuse_rules {
        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (code, body).into_response();
    }
    let mut rules = state.rules.lock().unwrap_or_else(|p| p.into_inner());
    let rule_json = |r: &Rule| {
        let mut v = json!({"id": r.id, "value": r.value});
        if let Some(tag) = &r.tag {
            v["tag"] = json!(tag);
        }
        v
    };
    if !is_post {
        let data: Vec<Value> = rules.iter().map(rule_json).collect();
        let mut answer = json!({"meta": {"sent": SENT, "result_count": data.len()}});
        if !data.is_empty() {
            answer["data"] = json!(data);
        }
        return axum::Json(answer).into_response();
    }
    let body = call.body.unwrap_or(Value::Null);
    if let Some(ids) = body["delete"]["ids"].as_array() {
        let before = rules.len();
        rules.retain(|r| !ids.iter().any(|id| id.as_str() == Some(r.id.as_str())));
        let deleted = before - rules.len();
        return axum::Json(json!({"meta": {"sent": SENT, "summary": {"deleted": deleted, "not_deleted": ids.len() - deleted}}}))
            .into_response();
    }
    let Some(add) = body["add"].as_array() else {
        return (StatusCode::BAD_REQUEST, r#"{"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.x.com/2/problems/invalid-request"}"#).into_response();
    };
    let mut created = Vec::new();
    let mut errors = Vec::new();
    for rule in add {
        let value = rule["value"].as_str().unwrap_or("").to_owned();
        if value.contains("nosuchop:") {
            errors.push(json!({"value": value, "details": ["Reference to invalid operator 'nosuchop'. Operator is not available in current product or product packaging. Please refer to complete available operator list at https://developer.x.com/en/docs/x-api/tweets/filtered-stream/integrate/build-a-rule#list. (at position 1)"], "title": "UnprocessableEntity", "type": "https://api.x.com/2/problems/invalid-rules"}));
            continue;
        }
        let mut next = state.next_id.lock().unwrap_or_else(|p| p.into_inner());
        *next += 1;
        let new = Rule {
            id: next.to_string(),
            value,
            tag: rule["tag"].as_str().map(str::to_owned),
        };
        created.push(rule_json(&new));
        rules.push(new);
    }
    let mut answer = json!({"meta": {"sent": SENT, "summary": {"created": created.len(), "not_created": errors.len(), "valid": created.len(), "invalid": errors.len()}}});
    if !created.is_empty() {
        answer["data"] = json!(created);
    }
    if !errors.is_empty() {
        answer["errors"] = json!(errors);
        return axum::Json(answer).into_response();
    }
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// `GET /2/tweets/search/stream`: the plan of the n-th request (the last one repeats).
async fn stream(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    state.calls.record(request).await;
    let n = state.calls.starting_with(STREAM).len();
    state.script.answer(
        n,
        &[("content-type", "application/json; charset=utf-8")],
        "application/problem+json",
    )
}
