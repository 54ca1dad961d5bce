//! Pull request events: GitHub's `pull_request` and Gitea's (Forgejo's).
//!
//! Only what names the pull request is read: its number, the head commit
//! the forge says it has, its base branch, who opened it, and the
//! repository. None of it is trusted beyond "look at pull request N of
//! this repository": the node's announcer fetches `refs/pull/N/head`
//! itself and announces nothing unless the ref holds exactly the head the
//! event named.

use buildmesh_protocol::{LONG_TEXT_BYTES_MAX, SHORT_TEXT_BYTES_MAX};
use serde::Deserialize;

/// What a pull request event asks the node to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestEvent {
    /// Where the forge says the repository is (`clone_url`, `html_url`):
    /// the announcer matches them against declared repositories.
    pub repositories: Vec<String>,
    /// The pull request's number.
    pub number: u64,
    /// The head commit the event names, lower-case hex.
    pub head: String,
    /// The base branch.
    pub base: String,
    /// Who opened the pull request (the forge's login).
    pub author: String,
}

/// A forge's word that a pull request was closed (merged or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestClosed {
    /// Where the forge says the repository is, as in
    /// [`PullRequestEvent::repositories`].
    pub repositories: Vec<String>,
    /// The pull request's number.
    pub number: u64,
}

/// What to do with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Look at this pull request.
    Check(PullRequestEvent),
    /// This pull request was closed: stop building it.
    Close(PullRequestClosed),
    /// Nothing to build (a labelled, edited... pull request).
    Ignored(String),
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadPayload {
    /// Not the JSON of a pull request event.
    #[error("not a pull request event: {0}")]
    Json(String),
    /// A field is out of bounds.
    #[error("{0}")]
    Field(&'static str),
}

/// The actions whose head is worth building: a new pull request, new
/// commits on it (GitHub says `synchronize`, Gitea `synchronized`), and
/// one opened again.
const ACTIONS: [&str; 4] = ["opened", "synchronize", "synchronized", "reopened"];

/// The action that closes a pull request, merged or not (GitHub, Gitea and
/// Forgejo all say `closed`).
const CLOSED: &str = "closed";

#[derive(Deserialize)]
struct Payload {
    action: String,
    pull_request: PullRequest,
    repository: Repository,
}

#[derive(Deserialize)]
struct PullRequest {
    number: u64,
    head: Head,
    base: Base,
    user: User,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
}

#[derive(Deserialize)]
struct Base {
    #[serde(rename = "ref")]
    branch: String,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct Repository {
    clone_url: Option<String>,
    html_url: Option<String>,
}

/// Reads a pull request event's body (already capped in size).
pub(crate) fn parse(body: &[u8]) -> Result<Parsed, BadPayload> {
    let payload: Payload =
        serde_json::from_slice(body).map_err(|e| BadPayload::Json(e.to_string()))?;
    if payload.action == CLOSED {
        if payload.pull_request.number == 0 {
            return Err(BadPayload::Field("pull_request.number is 0"));
        }
        return Ok(Parsed::Close(PullRequestClosed {
            repositories: repositories(payload.repository)?,
            number: payload.pull_request.number,
        }));
    }
    if !ACTIONS.contains(&payload.action.as_str()) {
        let mut action = payload.action;
        action.truncate(floor(&action, 64));
        return Ok(Parsed::Ignored(format!("action {action:?} builds nothing")));
    }
    let pull = payload.pull_request;
    let head = pull.head.sha;
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !(head.len() == 40 || head.len() == 64) || !hex(&head) {
        return Err(BadPayload::Field(
            "pull_request.head.sha is not a commit id (40 or 64 lower-case hex digits)",
        ));
    }
    if pull.number == 0 {
        return Err(BadPayload::Field("pull_request.number is 0"));
    }
    if pull.base.branch.is_empty() || pull.base.branch.len() > SHORT_TEXT_BYTES_MAX {
        return Err(BadPayload::Field(
            "pull_request.base.ref is empty or too long",
        ));
    }
    if pull.user.login.len() > SHORT_TEXT_BYTES_MAX {
        return Err(BadPayload::Field("pull_request.user.login is too long"));
    }
    Ok(Parsed::Check(PullRequestEvent {
        repositories: repositories(payload.repository)?,
        number: pull.number,
        head,
        base: pull.base.branch,
        author: pull.user.login,
    }))
}

/// Where the forge says the repository is: its clone and web URLs, those
/// that are given.
fn repositories(repository: Repository) -> Result<Vec<String>, BadPayload> {
    let repositories: Vec<String> = [repository.clone_url, repository.html_url]
        .into_iter()
        .flatten()
        .filter(|url| !url.is_empty())
        .collect();
    if repositories.is_empty() || repositories.iter().any(|u| u.len() > LONG_TEXT_BYTES_MAX) {
        return Err(BadPayload::Field(
            "repository.clone_url and html_url are missing or too long",
        ));
    }
    Ok(repositories)
}

/// The largest char boundary of `text` at or below `at`.
fn floor(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(action: &str, sha: &str) -> String {
        serde_json::json!({
            "action": action,
            "number": 7,
            "pull_request": {
                "number": 7,
                "title": "ignored",
                "head": { "sha": sha, "ref": "feature" },
                "base": { "ref": "main", "sha": "ignored" },
                "user": { "login": "octocat" },
            },
            "repository": {
                "clone_url": "https://github.com/o/r.git",
                "html_url": "https://github.com/o/r",
            },
            "sender": { "login": "someone" },
        })
        .to_string()
    }

    #[test]
    fn the_fields_needed_are_read_and_nothing_else() {
        let sha = "ab".repeat(20);
        let Ok(Parsed::Check(event)) = parse(payload("synchronize", &sha).as_bytes()) else {
            panic!("a synchronize event is checked");
        };
        assert_eq!(event.number, 7);
        assert_eq!(event.head, sha);
        assert_eq!(
            (event.base.as_str(), event.author.as_str()),
            ("main", "octocat")
        );
        assert_eq!(
            event.repositories,
            ["https://github.com/o/r.git", "https://github.com/o/r"]
        );
        for action in ["opened", "reopened", "synchronized"] {
            assert!(matches!(
                parse(payload(action, &sha).as_bytes()),
                Ok(Parsed::Check(_))
            ));
        }
    }

    #[test]
    fn other_actions_are_ignored_and_bad_fields_refused() {
        let sha = "ab".repeat(20);
        for action in ["labeled", "edited", "merged"] {
            assert!(matches!(
                parse(payload(action, &sha).as_bytes()),
                Ok(Parsed::Ignored(_))
            ));
        }
        for bad in [
            "AB".repeat(20),
            "ab".repeat(19),
            "zz".repeat(20),
            String::new(),
        ] {
            assert!(matches!(
                parse(payload("opened", &bad).as_bytes()),
                Err(BadPayload::Field(_))
            ));
        }
        assert!(matches!(parse(b"{}"), Err(BadPayload::Json(_))));
        assert!(matches!(parse(b"not json"), Err(BadPayload::Json(_))));
        let zero = payload("opened", &sha).replace("\"number\":7", "\"number\":0");
        assert!(matches!(parse(zero.as_bytes()), Err(BadPayload::Field(_))));
    }

    #[test]
    fn a_close_names_the_pull_request_and_its_repository_only() {
        // The head is not read: a closed pull request's ref is not checked.
        let parsed = parse(payload("closed", "not a sha").as_bytes());
        assert_eq!(
            parsed,
            Ok(Parsed::Close(PullRequestClosed {
                repositories: vec![
                    "https://github.com/o/r.git".into(),
                    "https://github.com/o/r".into()
                ],
                number: 7,
            }))
        );
        let zero = payload("closed", "x").replace("\"number\":7", "\"number\":0");
        assert!(matches!(parse(zero.as_bytes()), Err(BadPayload::Field(_))));
        let nowhere = payload("closed", "x")
            .replace("https://github.com/o/r.git", "")
            .replace("https://github.com/o/r", "");
        assert!(matches!(
            parse(nowhere.as_bytes()),
            Err(BadPayload::Field(_))
        ));
    }
}
