//! The AuthZEN 1.0 wire format: the request body (subject, action, context, resource) and
//! the decision object read back as a [`Grant`], with the Cerbos dialect (its roles, metadata
//! and rule outputs). No I/O: the client in the parent module sends what this builds.

use std::time::Duration;

use secret_uri::SecretUri;
use serde_json::{Map, Value, json};

use crate::pdp::AccessRequest;
use crate::{AuthzenDialect, DenyReason, Grant, PdpFailure, PepError};

/// The longest TTL (and wrap TTL) a decision may carry, in seconds; more is malformed.
const MAX_TERM_SECONDS: f64 = 10.0 * 365.0 * 24.0 * 3600.0;

/// `subject`, `action` and `context`: everything but the resource.
pub(super) fn shared_body(
    dialect: AuthzenDialect,
    request: &AccessRequest<'_>,
    request_id: &str,
) -> Map<String, Value> {
    let ctx = request.context;
    let mut subject_props = Map::new();
    subject_props.insert("roles".into(), json!(ctx.roles));
    if dialect == AuthzenDialect::Cerbos && !ctx.roles.is_empty() {
        subject_props.insert("cerbos.roles".into(), json!(ctx.roles));
    }
    insert_opt(&mut subject_props, "issuer", ctx.issuer.as_deref());
    insert_opt(&mut subject_props, "client_id", ctx.client_id.as_deref());

    let mut context = Map::new();
    insert_opt(&mut context, "purpose", request.purpose);
    // No correlation id: it changes per call, and everything the PDP sees must be in the
    // grant key (it reaches the PDP as the `X-Request-ID` of logs only via audit events).
    insert_opt(
        &mut context,
        "workflow_run_id",
        ctx.workflow_run_id.as_deref(),
    );
    insert_opt(&mut context, "node_id", ctx.node_id.as_deref());
    insert_opt(&mut context, "system_id", ctx.system_id.as_deref());
    insert_opt(&mut context, "cnf_binding", request.cnf_binding);
    if dialect == AuthzenDialect::Cerbos {
        context.insert("cerbos.includeMeta".into(), Value::Bool(true));
        context.insert("cerbos.requestId".into(), json!(request_id));
    }

    let mut body = Map::new();
    body.insert(
        "subject".into(),
        json!({ "type": "user", "id": request.subject, "properties": subject_props }),
    );
    body.insert("action".into(), json!({ "name": "execute" }));
    body.insert("context".into(), Value::Object(context));
    body
}

fn insert_opt(map: &mut Map<String, Value>, name: &str, value: Option<&str>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        map.insert(name.to_owned(), Value::String(value.to_owned()));
    }
}

/// The `resource` object: the canonical URI as its id, its parts as properties.
pub(super) fn resource(request: &AccessRequest<'_>) -> Value {
    let uri = request.uri;
    let mut props = Map::new();
    props.insert("tenant".into(), json!(request.tenant));
    props.insert("mount".into(), json!(uri.mount()));
    props.insert("provider".into(), json!(uri.provider().as_str()));
    insert_opt(&mut props, "engine", uri.engine().map(|e| e.as_str()));
    props.insert("path".into(), json!(uri.path()));
    insert_opt(&mut props, "key", uri.key());
    if let Some(version) = uri.version() {
        props.insert("version".into(), json!(version));
    }
    json!({ "type": "secret", "id": uri.as_str(), "properties": props })
}

/// An AuthZEN decision object (`{"decision": bool, "context": {...}}`) as a grant.
pub(super) fn decision_to_grant(
    decision: &Value,
    request: &AccessRequest<'_>,
    request_id: &str,
) -> Result<Grant, PepError> {
    let malformed = || PepError::unavailable(PdpFailure::Malformed);
    let permitted = decision
        .get("decision")
        .and_then(Value::as_bool)
        .ok_or_else(malformed)?;
    if !permitted {
        return Err(PepError::denied(DenyReason::PdpDeny));
    }
    let terms = grant_terms(decision.get("context"), request.uri);
    match terms.get("obligations") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) if list.is_empty() => {}
        Some(_) => {
            tracing::debug!(request_id, "PDP permit carries obligations; denying");
            return Err(PepError::denied(DenyReason::UnknownObligation));
        }
    }
    let mut grant = Grant::with_defaults(request.defaults).bound_to(request.cnf_binding);
    if let Some(ttl) = first(&terms, &["ttl", "ttl_s", "grant_ttl"]) {
        grant.ttl = seconds(ttl).ok_or_else(malformed)?;
    }
    if let Some(uses) = terms.get("max_uses") {
        let uses = uses.as_u64().ok_or_else(malformed)?;
        grant.max_uses = u32::try_from(uses).unwrap_or(u32::MAX);
    }
    grant.decision_id = Some(match terms.get("decision_id") {
        Some(id) => id.as_str().ok_or_else(malformed)?.to_owned(),
        None => request_id.to_owned(),
    });
    grant.policy_version = string_term(&terms, "policy_version")?;
    grant.classification = string_term(&terms, "classification")?;
    grant.must_revalidate_on = match terms.get("must_revalidate_on") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(malformed)?,
        Some(_) => return Err(malformed()),
    };
    if let Some(wrap) = terms.get("wrap_ttl") {
        grant.wrap_ttl = Some(seconds(wrap).ok_or_else(malformed)?);
    }
    Ok(grant)
}

fn first<'a>(terms: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| terms.get(*name))
}

fn seconds(value: &Value) -> Option<Duration> {
    let secs = value.as_f64()?;
    (secs.is_finite() && (0.0..=MAX_TERM_SECONDS).contains(&secs))
        .then(|| Duration::from_secs_f64(secs))
}

fn string_term(terms: &Map<String, Value>, name: &str) -> Result<Option<String>, PepError> {
    match terms.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(PepError::unavailable(PdpFailure::Malformed)),
    }
}

/// The grant terms of a decision `context`: its own top-level keys, plus (for Cerbos) the
/// `val` objects of the outputs of the result for this URI, and the matched policy as the
/// policy version.
fn grant_terms(context: Option<&Value>, uri: &SecretUri) -> Map<String, Value> {
    let mut terms = Map::new();
    let Some(Value::Object(context)) = context else {
        return terms;
    };
    for (key, value) in context {
        if key != "cerbos.response" {
            terms.insert(key.clone(), value.clone());
        }
    }
    let results = context
        .get("cerbos.response")
        .and_then(|r| r.get("results"))
        .and_then(Value::as_array);
    let result = results.and_then(|results| {
        results.iter().find(|r| {
            r.get("resource")
                .and_then(|res| res.get("id"))
                .and_then(Value::as_str)
                == Some(uri.as_str())
        })
    });
    if let Some(result) = result {
        let outputs = result.get("outputs").and_then(Value::as_array);
        for output in outputs.into_iter().flatten() {
            let action = output.get("action").and_then(Value::as_str);
            if action.is_some_and(|a| a != "execute") {
                continue;
            }
            if let Some(Value::Object(val)) = output.get("val") {
                for (key, value) in val {
                    terms.insert(key.clone(), value.clone());
                }
            }
        }
        let matched = result
            .get("meta")
            .and_then(|m| m.get("actions"))
            .and_then(|a| a.get("execute"))
            .and_then(|e| e.get("matchedPolicy"))
            .and_then(Value::as_str);
        if let Some(policy) = matched
            && !terms.contains_key("policy_version")
        {
            terms.insert("policy_version".into(), Value::String(policy.to_owned()));
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExecutionContext, GrantDefaults};

    fn request<'a>(uri: &'a SecretUri, ctx: &'a ExecutionContext) -> AccessRequest<'a> {
        let mut request = AccessRequest::new("alice", "t1", uri, ctx);
        request.defaults = GrantDefaults {
            ttl: Duration::from_secs(300),
            max_uses: 1,
        };
        request
    }

    #[test]
    fn decisions_become_grants() {
        let uri = SecretUri::parse("openbao+kv2://secret/app#k").unwrap();
        let ctx = ExecutionContext::new("alice");
        let req = request(&uri, &ctx);

        let bare = decision_to_grant(&json!({"decision": true}), &req, "rid").unwrap();
        assert_eq!((bare.ttl.as_secs(), bare.max_uses), (300, 1));
        assert_eq!(bare.decision_id.as_deref(), Some("rid"));

        let full = decision_to_grant(
            &json!({"decision": true, "context": {
                "ttl": 30, "max_uses": 7, "decision_id": "d-1", "policy_version": "v9",
                "classification": "secret", "must_revalidate_on": ["role_change"], "wrap_ttl": 60,
                "obligations": []
            }}),
            &req,
            "rid",
        )
        .unwrap();
        assert_eq!((full.ttl.as_secs(), full.max_uses), (30, 7));
        assert_eq!(full.decision_id.as_deref(), Some("d-1"));
        assert_eq!(full.policy_version.as_deref(), Some("v9"));
        assert_eq!(full.classification.as_deref(), Some("secret"));
        assert_eq!(full.must_revalidate_on, ["role_change"]);
        assert_eq!(full.wrap_ttl, Some(Duration::from_secs(60)));

        let cerbos = decision_to_grant(
            &json!({"decision": true, "context": {"cerbos.response": {"results": [
                {"resource": {"id": "openbao+kv2://secret/other"}, "outputs": [{"action": "execute", "val": {"max_uses": 99}}]},
                {"resource": {"id": "openbao+kv2://secret/app#k"},
                 "meta": {"actions": {"execute": {"matchedPolicy": "resource.secret.vdefault"}}},
                 "outputs": [{"action": "execute", "src": "r#x", "val": {"max_uses": 7, "ttl": 60}}]}
            ]}}}),
            &req,
            "rid",
        )
        .unwrap();
        assert_eq!((cerbos.ttl.as_secs(), cerbos.max_uses), (60, 7));
        assert_eq!(
            cerbos.policy_version.as_deref(),
            Some("resource.secret.vdefault")
        );

        let code = |v: Value| {
            decision_to_grant(&v, &req, "rid")
                .map_err(|e| (e.code(), e.deny_reason()))
                .err()
        };
        assert_eq!(
            code(json!({"decision": false})),
            Some(("AUTHZ_DENIED", Some(DenyReason::PdpDeny)))
        );
        assert_eq!(
            code(json!({"decision": true, "context": {"obligations": ["mfa"]}})),
            Some(("AUTHZ_DENIED", Some(DenyReason::UnknownObligation)))
        );
        for malformed in [
            json!({}),
            json!({"decision": "yes"}),
            json!({"decision": true, "context": {"ttl": -1}}),
            json!({"decision": true, "context": {"max_uses": "many"}}),
            json!({"decision": true, "context": {"must_revalidate_on": [1]}}),
        ] {
            assert_eq!(code(malformed), Some(("PDP_UNAVAILABLE", None)));
        }
    }
}
