//! The access check in front of every route but `/healthz`.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use orbwatch_store::{TokenInfo, TokenScope};

use crate::error::ApiError;
use crate::{Access, AppState};

/// The state of the check: the app and what the route needs.
#[derive(Clone)]
pub struct Need {
    pub state: AppState,
    pub access: Access,
}

/// The token a request presented, from `Authorization: Bearer T`, or
/// (when `basic` is allowed) `Authorization: Basic base64(user:T)`.
pub fn presented_token(req: &Request, basic: bool) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (kind, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if kind.eq_ignore_ascii_case("bearer") {
        return (!rest.is_empty()).then(|| rest.to_string());
    }
    if basic && kind.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, pass) = text.split_once(':')?;
        return (!pass.is_empty()).then(|| pass.to_string());
    }
    None
}

/// Middleware: 401 without a live token, 403 when its scope is too weak;
/// otherwise the token's [`TokenInfo`] goes into the request's extensions.
pub async fn require(State(need): State<Need>, mut req: Request, next: Next) -> Response {
    let (scope, basic, session) = match need.access {
        Access::Public => return next.run(req).await,
        Access::Bearer(s) => (s, false, false),
        Access::BearerOrBasic(s) => (s, true, false),
        Access::Session(s) => (s, false, true),
    };
    if session {
        // A browser's session cookie first; a bearer token also works.
        match crate::dashboard::session_of(&need.state, req.headers()).await {
            Ok(Some((info, csrf))) => {
                if !info.scope.allows(scope) {
                    return ApiError::Forbidden {
                        have: info.scope.to_string(),
                        need: scope.to_string(),
                    }
                    .into_response();
                }
                req.extensions_mut().insert(crate::dashboard::Viewer {
                    name: info.name.clone(),
                    scope: info.scope,
                    csrf,
                });
                req.extensions_mut().insert(info);
                return next.run(req).await;
            }
            Ok(None) => {}
            Err(e) => return e.into_response(),
        }
    }
    let Some(token) = presented_token(&req, basic) else {
        return if session {
            crate::dashboard::login_needed()
        } else {
            unauthorized(basic)
        };
    };
    let found = need
        .state
        .with_reader(move |s| Ok(s.check_token(&token)?))
        .await;
    let info: TokenInfo = match found {
        Ok(Some(info)) => info,
        Ok(None) => return unauthorized(basic),
        Err(e) => return e.into_response(),
    };
    if !info.scope.allows(scope) {
        return ApiError::Forbidden {
            have: info.scope.to_string(),
            need: scope.to_string(),
        }
        .into_response();
    }
    if session {
        // A bearer client of a page has no form to protect: no CSRF token.
        req.extensions_mut().insert(crate::dashboard::Viewer {
            name: info.name.clone(),
            scope: info.scope,
            csrf: String::new(),
        });
    }
    req.extensions_mut().insert(info);
    next.run(req).await
}

fn unauthorized(basic: bool) -> Response {
    let mut r = ApiError::Unauthorized.into_response();
    if basic {
        r.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"orbwatch\""),
        );
    }
    r
}

/// The scope names, for messages.
pub fn scope_names() -> String {
    TokenScope::ALL.map(|s| s.as_str()).join(", ")
}
