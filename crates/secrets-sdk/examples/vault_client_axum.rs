//! An axum 0.8 service whose handler reads a secret for the caller through `VaultClient`: the
//! PEP decides (PDP grant, audience, `jti` replay, sender binding, uses), then the KV v2 read.
//!
//! ```sh
//! # With `cargo xtask services up` running (OpenBao and Cerbos), e.g.:
//! export VAULT_URL=http://127.0.0.1:8200 VAULT_TOKEN=… TENANT_ID=t1 \
//!        TENANT_ALLOWED_MOUNTS=secret SECRET_TENANT_SALT=$(openssl rand -hex 32) \
//!        AUTHZEN_PDP_URL=http://127.0.0.1:3592 AUTHZEN_DIALECT=cerbos
//! cargo run -p secrets-sdk --example vault_client_axum --features axum
//! curl -H 'x-subject: alice' -H 'x-aud: crud.secrets' -H 'x-roles: reader' \
//!      -H "x-jti: $(uuidgen)" http://127.0.0.1:3000/db
//! ```
//!
//! The `ExecutionContext` extractor (secret-pep's `axum` feature) takes the context an
//! authentication layer put into the request extensions. Here that layer reads the gateway's
//! headers: trust them **only** behind a gateway that verifies the token, sets them from its
//! claims and strips any the client sent. The original eight headers are read by default;
//! this deployment's gateway also sets (and strips) `x-roles`, so the service opts in to it by
//! name. A repeated header is refused (400), never first-wins. A real service builds the
//! context from the claims of the token it verified itself.

use std::process::ExitCode;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrets_sdk::pep::{ContextHeaders, headers};
use secrets_sdk::{Error, ExecutionContext, VaultClient};

/// The secret this service needs; one field of it.
const DB_PASSWORD: &str = "openbao+kv2://secret/app/db#password";

/// The authentication layer: puts the caller's `ExecutionContext` into the extensions.
async fn context_from_gateway(mut request: Request, next: Next) -> Response {
    let read = ContextHeaders::original()
        .trust(headers::ROLES)
        .and_then(|contract| contract.read(request.headers()));
    match read {
        Ok(ctx) => {
            request.extensions_mut().insert(ctx);
            next.run(request).await
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{}\n", e.code())).into_response(),
    }
}

/// Reads the secret for this caller and uses it; the value is never sent back.
async fn db(
    State(client): State<VaultClient>,
    ctx: ExecutionContext,
) -> Result<String, (StatusCode, String)> {
    let password = client
        .get_credentials(DB_PASSWORD, Some(&ctx))
        .await
        .map_err(|e| (status(&e), format!("{}\n", e.code())))?;
    // … open a connection pool with `password.expose_str()` here …
    let bytes = password.expose_str().map_or(0, str::len);
    Ok(format!("connected (a {bytes}-byte password)\n"))
}

/// An HTTP status for each error code; the body carries only the code.
fn status(error: &Error) -> StatusCode {
    match error.code() {
        "AUTHZ_DENIED" | "BINDING_DRIFT" | "TENANT_MOUNT_MISMATCH" => StatusCode::FORBIDDEN,
        "PDP_UNAVAILABLE" | "UNAVAILABLE" | "TIMEOUT" => StatusCode::SERVICE_UNAVAILABLE,
        "NOT_FOUND" | "KEY_NOT_FOUND" | "VERSION_DELETED" | "VERSION_DESTROYED" => {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn app(client: VaultClient) -> Router {
    Router::new()
        .route("/db", get(db))
        .layer(middleware::from_fn(context_from_gateway))
        .with_state(client)
}

#[tokio::main]
async fn main() -> ExitCode {
    let client = match VaultClient::from_env() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("{}: {e}", e.code());
            return ExitCode::from(2);
        }
    };
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    println!("listening on http://{addr}/db");
    match axum::serve(listener, app(client)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
