//! Sign-in routes and the admin's user management.

use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;

use super::request::Ctx;
use super::{actor, client_address, principal, response};
use crate::auth::users::{self, UserChange};
use crate::auth::Role;
use crate::error::Error;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OwnPasswordBody {
    current_password: String,
    new_password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUserBody {
    username: String,
    role: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoleBody {
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordBody {
    password: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct OptionalReason {
    #[allow(dead_code)]
    reason: Option<String>,
}

fn parse_role(text: &str) -> Result<Role, Error> {
    Role::parse(text)
        .ok_or_else(|| Error::invalid_field("INVALID_FIELD", "role", "role must be admin, maker, checker or viewer"))
}

/// `POST /api/v1/auth/login` → `{token, expires_at, user: {username, role}}`.
pub async fn login(ctx: &mut Ctx) -> Result<Response, Error> {
    let body: LoginBody = ctx.json().await?;
    let address = client_address(ctx);
    let engine = ctx.state.engine.clone();
    let ok = tokio::spawn(async move { engine.login(&body.username, body.password, address).await })
        .await
        .map_err(Error::internal)??;
    let body = json!({
        "token": ok.token,
        "expires_at": ok.expires_at.to_string(),
        "user": { "username": ok.user.username, "role": ok.user.role.as_str() },
    });
    Ok(response::json(StatusCode::OK, &body))
}

/// `POST /api/v1/auth/logout` (empty body).
pub async fn logout(ctx: &mut Ctx) -> Result<Response, Error> {
    let _: OptionalReason = ctx.json_or_empty().await?;
    let p = principal(ctx)?.clone();
    ctx.state.engine.logout(&p).await?;
    Ok(response::json(StatusCode::OK, &json!({ "ok": true })))
}

/// `GET /api/v1/auth/me`.
pub async fn me(ctx: &mut Ctx) -> Result<Response, Error> {
    let p = principal(ctx)?;
    Ok(response::json(
        StatusCode::OK,
        &json!({ "username": p.actor.name, "role": p.role.as_str(), "expires_at": p.expires_at.to_string() }),
    ))
}

/// `POST /api/v1/auth/password` `{current_password, new_password}`.
pub async fn own_password(ctx: &mut Ctx) -> Result<Response, Error> {
    let body: OwnPasswordBody = ctx.json().await?;
    let p = principal(ctx)?.clone();
    let user = ctx.state.engine.change_own_password(&p, body.current_password, body.new_password).await?;
    Ok(response::json(StatusCode::OK, &users::view(&user)))
}

/// `GET /api/v1/users/`.
pub async fn list(ctx: &mut Ctx) -> Result<Response, Error> {
    ctx.query_params(&[])?;
    let items: Vec<_> = ctx.state.engine.list_users()?.iter().map(users::view).collect();
    Ok(response::json(StatusCode::OK, &json!({ "items": items, "next_cursor": null })))
}

/// `POST /api/v1/users/` `{username, role, password}`.
pub async fn create(ctx: &mut Ctx) -> Result<Response, Error> {
    let body: CreateUserBody = ctx.json().await?;
    let role = parse_role(&body.role)?;
    let user = ctx.state.engine.add_user(&actor(ctx)?, &body.username, role, body.password).await?;
    Ok(response::json(StatusCode::CREATED, &users::view(&user)))
}

/// `POST /api/v1/users/{username}/role|disable|enable|password/`.
pub async fn change(ctx: &mut Ctx, what: &str) -> Result<Response, Error> {
    let change = match what {
        "role" => UserChange::Role(parse_role(&ctx.json::<RoleBody>().await?.role)?),
        "password" => UserChange::Password(ctx.json::<PasswordBody>().await?.password),
        "disable" => {
            let _: OptionalReason = ctx.json_or_empty().await?;
            UserChange::Disable
        }
        _ => {
            let _: OptionalReason = ctx.json_or_empty().await?;
            UserChange::Enable
        }
    };
    let name = ctx.param(0).to_owned();
    let user = ctx.state.engine.change_user(&actor(ctx)?, &name, change).await?;
    Ok(response::json(StatusCode::OK, &users::view(&user)))
}
