//! Who may change things (ban peers, force builds): the operator, who
//! proves it with the token the node writes to `DATA_DIR/operator.token`
//! at each start.
//!
//! Being on this machine proves nothing: a build step runs here too, and a
//! web page served on any loopback port can make the browser post here.
//! So every operator write needs one of:
//!
//! - `Authorization: Bearer TOKEN` (the CLI, scripts, curl): a browser
//!   never adds that header to a request another site makes it send;
//! - the session cookie *and* the form's CSRF field (the dashboard).
//!
//! `GET /operator?token=TOKEN`, the link the node prints at start, sets
//! the cookie. Its value is HMAC-SHA256(token, "session") and the CSRF
//! field is HMAC-SHA256(token, "csrf"), so neither gives the token away.
//! Browsers send cookies to every port of a host, and every loopback port
//! is the same site for `SameSite`: a page on another loopback port can
//! make the browser send the cookie, but it cannot read this node's pages,
//! so it never has the CSRF field. Bans take the bearer token only: no
//! dashboard form bans. Secrets are compared in constant time.

use crate::{AppState, error};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::net::SocketAddr;
use std::path::PathBuf;
use subtle::ConstantTimeEq;

/// Fewest characters an operator token may have; a shorter one is not
/// used, and operator writes are then refused to everyone.
pub const TOKEN_CHARS_MIN: usize = 32;

/// The operator's secret, as the node wrote it.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The token: the node writes the hex of 32 random bytes.
    pub token: String,
    /// Where the node wrote it; refusals name it, so the operator knows
    /// where to look.
    pub token_file: PathBuf,
}

/// What a request must show to change things, derived from the token.
pub(crate) struct Gate {
    /// `None`: no usable token, so every operator write is refused.
    secrets: Option<Secrets>,
    /// Where the token is, for the refusals' text.
    token_file: String,
}

struct Secrets {
    token: String,
    /// The session cookie's value.
    session: String,
    /// The CSRF field's value.
    csrf: String,
}

/// Why an operator write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Neither a valid bearer token nor the session cookie.
    NoToken,
    /// The session cookie, but not this node's CSRF field.
    NoCsrf,
}

impl Gate {
    pub(crate) fn new(operator: Option<Operator>) -> Gate {
        let token_file = operator.as_ref().map_or_else(
            || "DATA_DIR/operator.token".to_owned(),
            |o| o.token_file.display().to_string(),
        );
        let secrets = operator
            .filter(|o| o.token.len() >= TOKEN_CHARS_MIN)
            .map(|o| Secrets {
                session: derive(&o.token, "buildmesh operator session"),
                csrf: derive(&o.token, "buildmesh operator csrf"),
                token: o.token,
            });
        if secrets.is_none() {
            tracing::warn!("no operator token: nobody can ban peers or force builds over HTTP");
        }
        Gate {
            secrets,
            token_file,
        }
    }

    /// For API writes: `Ok` if the request carries a valid bearer token.
    /// Cookies count for nothing here.
    pub(crate) fn check_bearer(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(secrets) = &self.secrets else {
            return Err(Refusal::NoToken);
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let token = match given.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => "",
        };
        same(token, &secrets.token)
            .then_some(())
            .ok_or(Refusal::NoToken)
    }

    /// For the dashboard's forms: `Ok` if the request carries a valid
    /// bearer token, or the session cookie and `csrf` (the form's field).
    pub(crate) fn check_form(
        &self,
        headers: &HeaderMap,
        csrf: Option<&str>,
    ) -> Result<(), Refusal> {
        if headers.contains_key(header::AUTHORIZATION) {
            return self.check_bearer(headers);
        }
        let Some(secrets) = &self.secrets else {
            return Err(Refusal::NoToken);
        };
        if !self.has_session(headers) {
            return Err(Refusal::NoToken);
        }
        match csrf {
            Some(csrf) if same(csrf, &secrets.csrf) => Ok(()),
            _ => Err(Refusal::NoCsrf),
        }
    }

    /// The CSRF field for this request's forms, if it carries the session
    /// cookie: only the operator's browser gets a working form.
    pub(crate) fn csrf_for(&self, headers: &HeaderMap) -> Option<&str> {
        let secrets = self.secrets.as_ref()?;
        self.has_session(headers).then_some(secrets.csrf.as_str())
    }

    /// What to tell a client that was refused, and what to do.
    pub(crate) fn message(&self, refusal: Refusal) -> String {
        match refusal {
            Refusal::NoToken => format!(
                "this needs the operator token: send Authorization: Bearer $(cat {}), \
                 or open the link the node printed at start (http://127.0.0.1:PORT/operator?token=…)",
                self.token_file
            ),
            Refusal::NoCsrf => "this form did not come from this node's own page: \
                 reload the page and submit it again"
                .to_owned(),
        }
    }

    fn has_session(&self, headers: &HeaderMap) -> bool {
        let Some(secrets) = &self.secrets else {
            return false;
        };
        let name = cookie_name(headers);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(key, value)| key == name && same(value, &secrets.session))
    }
}

/// HMAC-SHA256 of `label` under `token`, hex.
fn derive(token: &str, label: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(token.as_bytes()) {
        Ok(mut mac) => {
            mac.update(label.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; never reached.
        Err(_) => String::new(),
    }
}

/// Equal, in time that does not depend on where they differ.
fn same(given: &str, secret: &str) -> bool {
    !secret.is_empty() && bool::from(given.as_bytes().ct_eq(secret.as_bytes()))
}

/// The session cookie's name: it carries the port, since browsers send
/// cookies to every port of a host and two nodes on one machine must not
/// overwrite each other's session.
fn cookie_name(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let port = host
        .rsplit_once(':')
        .map(|(_, port)| port)
        .filter(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("80");
    format!("buildmesh_operator_{port}")
}

/// `?token=…` of the operator link.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    token: Option<String>,
}

/// `GET /operator?token=TOKEN`: with the right token, sets the session
/// cookie and sends the browser on to `/`, so the token leaves the
/// address bar.
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    if let Err(why) = crate::local::from_this_machine(&client, &headers) {
        return crate::dashboard::problem(&state, StatusCode::FORBIDDEN, why);
    }
    let token = query.token.unwrap_or_default();
    let Some(secrets) = &state.operator.secrets else {
        return crate::dashboard::problem(
            &state,
            StatusCode::FORBIDDEN,
            "this node has no operator token",
        );
    };
    if !same(&token, &secrets.token) {
        return crate::dashboard::problem(
            &state,
            StatusCode::FORBIDDEN,
            &format!(
                "wrong operator token: open the link the node printed at start, \
                 or use the token in {}",
                state.operator.token_file
            ),
        );
    }
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        cookie_name(&headers),
        secrets.session
    );
    let Ok(cookie) = HeaderValue::from_str(&cookie) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot set the cookie");
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static("/")),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn gate() -> Gate {
        Gate::new(Some(Operator {
            token: TOKEN.to_owned(),
            token_file: "/data/operator.token".into(),
        }))
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7878"));
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.append(name.clone(), value);
            }
        }
        map
    }

    #[test]
    fn a_bearer_token_must_be_the_token() {
        let gate = gate();
        let bearer = |t: &str| headers(&[(header::AUTHORIZATION, &format!("Bearer {t}"))]);
        assert_eq!(gate.check_bearer(&bearer(TOKEN)), Ok(()));
        assert_eq!(gate.check_bearer(&bearer("0123")), Err(Refusal::NoToken));
        assert_eq!(gate.check_bearer(&bearer("")), Err(Refusal::NoToken));
        assert_eq!(gate.check_bearer(&headers(&[])), Err(Refusal::NoToken));
        let basic = headers(&[(header::AUTHORIZATION, TOKEN)]);
        assert_eq!(gate.check_bearer(&basic), Err(Refusal::NoToken));
        // A form may come with the bearer token instead, but not a wrong one.
        assert_eq!(gate.check_form(&bearer(TOKEN), None), Ok(()));
        assert_eq!(
            gate.check_form(&bearer("0123"), None),
            Err(Refusal::NoToken)
        );
        assert!(
            gate.message(Refusal::NoToken)
                .contains("/data/operator.token")
        );
    }

    #[test]
    fn the_session_cookie_needs_the_csrf_field_too() {
        let gate = gate();
        let session = derive(TOKEN, "buildmesh operator session");
        let csrf = derive(TOKEN, "buildmesh operator csrf");
        let cookie = format!("other=1; buildmesh_operator_7878={session}");
        let with = headers(&[(header::COOKIE, &cookie)]);
        assert_eq!(gate.csrf_for(&with), Some(csrf.as_str()));
        assert_eq!(gate.check_form(&with, Some(&csrf)), Ok(()));
        // The API takes no cookie, even with the CSRF value.
        assert_eq!(gate.check_bearer(&with), Err(Refusal::NoToken));
        assert_eq!(gate.check_form(&with, None), Err(Refusal::NoCsrf));
        assert_eq!(gate.check_form(&with, Some(&session)), Err(Refusal::NoCsrf));
        // The raw token is not a session; another port's cookie is not ours.
        let raw = headers(&[(header::COOKIE, &format!("buildmesh_operator_7878={TOKEN}"))]);
        assert_eq!(gate.check_form(&raw, Some(&csrf)), Err(Refusal::NoToken));
        assert_eq!(gate.csrf_for(&raw), None);
        let other_port = headers(&[(
            header::COOKIE,
            &format!("buildmesh_operator_9999={session}"),
        )]);
        assert_eq!(
            gate.check_form(&other_port, Some(&csrf)),
            Err(Refusal::NoToken)
        );
    }

    #[test]
    fn no_usable_token_refuses_everyone() {
        for operator in [
            None,
            Some(Operator {
                token: "short".to_owned(),
                token_file: "f".into(),
            }),
        ] {
            let gate = Gate::new(operator);
            let bearer = headers(&[(header::AUTHORIZATION, "Bearer short")]);
            assert_eq!(gate.check_bearer(&bearer), Err(Refusal::NoToken));
            assert_eq!(
                gate.check_form(&headers(&[]), Some("")),
                Err(Refusal::NoToken)
            );
        }
    }
}
