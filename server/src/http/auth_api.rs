//! MLflow 3.17.2's users and permissions API of the basic-auth app, the one
//! `mlflow.server.get_app_client("basic-auth", uri)` calls: users create, get, list, current,
//! update-password, update-admin and delete under `/api/2.0/mlflow/users/`, and the per-user
//! grant, revoke, get and list under `/api/3.0/mlflow/users/`. Who may call what is decided by
//! the middleware (`http::auth`); the rules here are the handlers' own.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use axum::{Extension, Router};
use serde_json::json;

use super::auth::Caller;
use super::auth_resolve::Params;
use super::reply::{empty, reply};
use super::request::Message;
use super::{ApiError, ApiResult, AppState};
use crate::auth::permissions::{self, Key, Permission, RESOURCE_TYPES};
use crate::auth::store::User;
use crate::auth::{check_password_policy, hash_password, Auth};
use crate::error::{ErrorCode, MlflowError};

/// `/mlflow/users/*` of `/api/2.0` and `/ajax-api/2.0`.
pub fn routes_v2() -> Router<AppState> {
    Router::new()
        .route("/mlflow/users/create", post(create_user))
        .route("/mlflow/users/get", get(get_user))
        .route("/mlflow/users/list", get(list_users))
        .route("/mlflow/users/current", get(current_user))
        .route("/mlflow/users/update-password", patch(update_password))
        .route("/mlflow/users/update-admin", patch(update_admin))
        .route("/mlflow/users/delete", delete(delete_user))
}

/// The per-user permission routes of `/api/3.0` and `/ajax-api/3.0`.
pub fn routes_v3() -> Router<AppState> {
    Router::new()
        .route(
            "/mlflow/users/current/permissions",
            get(current_permissions),
        )
        .route("/mlflow/users/permissions/list", get(list_permissions))
        .route("/mlflow/users/permissions/grant", post(grant))
        .route("/mlflow/users/permissions/revoke", post(revoke))
        .route("/mlflow/users/permissions/get", get(get_permission))
}

fn auth(state: &AppState) -> Result<&Auth, ApiError> {
    state
        .auth
        .as_ref()
        .ok_or_else(|| ApiError(MlflowError::new(ErrorCode::EndpointNotFound, "auth is off")))
}

fn user_json(user: &User) -> serde_json::Value {
    json!({"id": user.id, "username": user.username, "is_admin": user.is_admin})
}

fn required(params: &Params, name: &str) -> Result<String, ApiError> {
    params
        .str(name)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError(MlflowError::missing(name)))
}

fn plain_400(message: &'static str) -> ApiResult {
    Ok((
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        message,
    )
        .into_response())
}

async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let auth = auth(&state)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return plain_400("Invalid content type. Must be application/json");
    }
    let params = Params(serde_json::from_slice(&body).unwrap_or_default());
    let (Some(username), Some(password)) = (
        params.str("username").filter(|s| !s.is_empty()),
        params.str("password").filter(|s| !s.is_empty()),
    ) else {
        return plain_400("Username and password cannot be empty.");
    };
    check_password_policy(&password)?;
    let hash = hash_password(&password).await?;
    let user = auth.store.create_user(&username, &hash, false).await?;
    reply(&json!({ "user": user_json(&user) }))
}

async fn get_user(State(state): State<AppState>, Message(m): Message) -> ApiResult {
    let user = auth(&state)?
        .store
        .user(&required(&Params(m), "username")?)
        .await?;
    reply(&json!({ "user": user_json(&user) }))
}

async fn list_users(State(state): State<AppState>) -> ApiResult {
    let auth = auth(&state)?;
    let mut users = Vec::new();
    for user in auth.store.list_users().await? {
        let mut entry = user_json(&user);
        let roles = auth.store.role_grants(user.id).await?;
        let mut by_role: Vec<serde_json::Value> = Vec::new();
        for g in roles {
            if by_role.last().and_then(|r| r["id"].as_i64()) != Some(g.role_id) {
                by_role.push(json!({"id": g.role_id, "name": g.role_name,
                    "workspace": g.workspace, "description": null, "permissions": []}));
            }
            if let Some(list) = by_role
                .last_mut()
                .and_then(|r| r["permissions"].as_array_mut())
            {
                list.push(
                    json!({"role_id": g.role_id, "resource_type": g.resource_type,
                    "resource_pattern": g.resource_pattern, "permission": g.permission}),
                );
            }
        }
        entry["roles"] = json!(by_role);
        users.push(entry);
    }
    reply(&json!({ "users": users }))
}

async fn current_user(Extension(Caller(user)): Extension<Caller>) -> ApiResult {
    reply(&json!({ "user": user_json(&user), "is_basic_auth": true }))
}

async fn update_password(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Message(m): Message,
) -> ApiResult {
    let auth = auth(&state)?;
    let params = Params(m);
    let username = required(&params, "username")?;
    let password = params.str("password").unwrap_or_default();
    if caller.username == username {
        // Changing one's own password needs the current one, so a borrowed session cannot.
        let Some(current) = params.str("current_password").filter(|s| !s.is_empty()) else {
            return Err(MlflowError::invalid(
                "Current password is required when changing your own password.",
            )
            .into());
        };
        if auth.authenticate(&username, &current).await?.is_none() {
            return Err(MlflowError::invalid("Current password does not match.").into());
        }
        if password == current {
            return Err(MlflowError::invalid(
                "New password must differ from the current password.",
            )
            .into());
        }
    }
    auth.store.user(&username).await?;
    check_password_policy(&password)?;
    auth.store
        .update_password(&username, &hash_password(&password).await?)
        .await?;
    auth.logins.forget(&username);
    empty()
}

async fn update_admin(State(state): State<AppState>, Message(m): Message) -> ApiResult {
    let params = Params(m);
    let username = required(&params, "username")?;
    let is_admin = match params.0.get("is_admin") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => return Err(MlflowError::missing("is_admin").into()),
    };
    let auth = auth(&state)?;
    auth.store.update_admin(&username, is_admin).await?;
    auth.logins.forget(&username);
    empty()
}

async fn delete_user(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Message(m): Message,
) -> ApiResult {
    let username = required(&Params(m), "username")?;
    if username == caller.username {
        return Err(MlflowError::new(
            ErrorCode::BadRequest,
            "Users cannot delete their own account. Ask another admin to delete this user instead.",
        )
        .into());
    }
    let auth = auth(&state)?;
    auth.store.delete_user(&username).await?;
    auth.logins.forget(&username);
    empty()
}

async fn current_permissions(
    State(state): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
) -> ApiResult {
    let grants = auth(&state)?.store.role_grants(user.id).await?;
    reply(&json!({ "is_admin": user.is_admin, "permissions": grants }))
}

async fn list_permissions(State(state): State<AppState>, Message(m): Message) -> ApiResult {
    let auth = auth(&state)?;
    let user = auth.store.user(&required(&Params(m), "username")?).await?;
    let grants = auth.store.role_grants(user.id).await?;
    reply(&json!({ "is_admin": user.is_admin, "permissions": grants }))
}

/// `resource_type` and `resource_id` of a grant request, checked as MLflow checks them.
fn resource(params: &Params) -> Result<(&'static str, String), ApiError> {
    let resource_type = required(params, "resource_type")?;
    if resource_type == permissions::WORKSPACE {
        return Err(MlflowError::invalid(
            "resource_type 'workspace' is not supported by the per-user permission convenience \
             APIs. Use set_workspace_permission / delete_workspace_permission for \
             workspace-wide grants.",
        )
        .into());
    }
    let Some((kind, by_id)) = RESOURCE_TYPES.iter().find(|(t, _)| *t == resource_type) else {
        let mut valid: Vec<&str> = RESOURCE_TYPES.iter().map(|(t, _)| *t).collect();
        valid.sort_unstable();
        return Err(MlflowError::invalid(format!(
            "Invalid resource type '{resource_type}'. Valid resource types are: {valid:?}"
        ))
        .into());
    };
    let id = required(params, "resource_id")?;
    if id != "*" && !by_id {
        return Err(MlflowError::invalid(format!(
            "Invalid resource_pattern '{id}' for resource_type='{kind}'. This resource type \
             supports only wildcard ('*') grants."
        ))
        .into());
    }
    Ok((kind, id))
}

async fn grant(State(state): State<AppState>, Message(m): Message) -> ApiResult {
    let auth = auth(&state)?;
    let params = Params(m);
    let username = required(&params, "username")?;
    let (kind, id) = resource(&params)?;
    let permission = required(&params, "permission")?;
    match Permission::parse(&permission) {
        Some(Permission::NoPermissions) | None => {
            return Err(MlflowError::invalid(format!(
                "Invalid permission '{permission}' for resource_type='{kind}'. Resource-level \
                 grants accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE')."
            ))
            .into())
        }
        Some(_) => {}
    }
    let user = auth.store.user(&username).await?;
    auth.store
        .grant(&user, kind, &id, &permission, false)
        .await?;
    empty()
}

async fn revoke(State(state): State<AppState>, Message(m): Message) -> ApiResult {
    let auth = auth(&state)?;
    let params = Params(m);
    let username = required(&params, "username")?;
    let (kind, id) = resource(&params)?;
    let user = auth.store.user(&username).await?;
    auth.store.revoke(&user, kind, &id).await?;
    empty()
}

async fn get_permission(State(state): State<AppState>, Message(m): Message) -> ApiResult {
    let auth = auth(&state)?;
    let params = Params(m);
    let username = required(&params, "username")?;
    let (kind, id) = resource(&params)?;
    let user = auth.store.user(&username).await?;
    let permission = auth.permission(&user, &Key::new(kind, id)).await?;
    reply(&json!({
        "allowed": permission.allows(permissions::Action::Use),
        "permission": permission.name(),
    }))
}
