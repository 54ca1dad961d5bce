//! Commit statuses on GitHub, Gitea and Forgejo.
//!
//! All three take `POST {api}/repos/{owner}/{repo}/statuses/{sha}` with
//! `{"state", "target_url", "description", "context"}`; GitHub's API root
//! is `https://api.github.com`, Gitea's and Forgejo's `https://HOST/api/v1`.
//! A status is set per context, so posting one again is harmless.

use crate::{Error, http_client};
use buildmesh_core::notify::{StatusState, StatusUpdate};
use buildmesh_core::view::CellStatus;
use serde_json::json;

/// Which API dialect (they differ in headers only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeKind {
    /// github.com or GitHub Enterprise.
    GitHub,
    /// Gitea or Forgejo (Codeberg).
    Gitea,
}

/// Where one project's statuses go.
#[derive(Debug, Clone)]
pub struct ForgeConfig {
    /// The dialect.
    pub kind: ForgeKind,
    /// The API root, without a trailing `/`.
    pub api: String,
    /// `owner/name` of the repository on the forge.
    pub repository: String,
    /// The token the statuses are posted with.
    pub token: String,
}

/// Posts one project's statuses.
#[derive(Clone)]
pub struct StatusPoster {
    client: reqwest::Client,
    config: ForgeConfig,
}

impl StatusPoster {
    /// A poster; fails if the API root is not http(s).
    pub fn new(config: ForgeConfig) -> Result<StatusPoster, Error> {
        Ok(StatusPoster {
            client: http_client(&config.api)?,
            config,
        })
    }

    /// Posts `status`, linking to `target_url`.
    pub async fn post(&self, status: &StatusUpdate, target_url: Option<&str>) -> Result<(), Error> {
        let url = format!(
            "{}/repos/{}/statuses/{}",
            self.config.api.trim_end_matches('/'),
            self.config.repository,
            status.commit
        );
        let body = json!({
            "state": status.state.as_str(),
            "target_url": target_url,
            "description": description(status),
            "context": format!("buildmesh/{}", status.platform),
        });
        let request = self.client.post(url).json(&body);
        let request = match self.config.kind {
            ForgeKind::GitHub => request
                .bearer_auth(&self.config.token)
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28"),
            ForgeKind::Gitea => {
                request.header("authorization", format!("token {}", self.config.token))
            }
        };
        crate::expect_success(request.send().await).await
    }
}

/// The status's one line (GitHub keeps 140 characters).
fn description(status: &StatusUpdate) -> String {
    let builders = match status.results {
        0 | 1 => String::new(),
        n => format!(" ({n} builds)"),
    };
    let what = match (status.cell, status.state) {
        (CellStatus::Disagree, _) => "Builders disagree, one more builds",
        (CellStatus::Flaky, _) => "Flaky: builders keep disagreeing",
        (CellStatus::Skipped, _) => "Skipped by the recipe",
        (CellStatus::Differs, _) => "Builders' artifacts differ",
        (_, StatusState::Pending) => "Building",
        (_, StatusState::Success) => "Passed",
        (_, StatusState::Failure) => "Failed",
        (_, StatusState::Error) => "Could not build",
    };
    format!("{what} on {}{builders}", status.platform)
        .chars()
        .take(140)
        .collect()
}

/// The forge and `owner/name` a repository URL names, for the hosts whose
/// dialect is known by name: `https://github.com/o/r(.git)`,
/// `git@github.com:o/r.git`, `https://codeberg.org/o/r` (Forgejo).
pub fn known_forge(repository: &str) -> Option<(ForgeKind, String, String)> {
    let rest = repository
        .strip_prefix("https://")
        .or_else(|| repository.strip_prefix("http://"))
        .or_else(|| repository.strip_prefix("ssh://git@"))
        .or_else(|| repository.strip_prefix("git@"))?;
    let (host, path) = rest.split_once(['/', ':'])?;
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = path.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    if owner.is_empty() || name.is_empty() || parts.next().is_some() {
        return None;
    }
    let named = format!("{owner}/{name}");
    match host {
        "github.com" => Some((ForgeKind::GitHub, "https://api.github.com".into(), named)),
        "codeberg.org" => Some((
            ForgeKind::Gitea,
            "https://codeberg.org/api/v1".into(),
            named,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_and_codeberg_urls_name_their_forge() {
        for url in [
            "https://github.com/rust-lang/cargo",
            "https://github.com/rust-lang/cargo.git",
            "git@github.com:rust-lang/cargo.git",
            "https://github.com/rust-lang/cargo/",
        ] {
            assert_eq!(
                known_forge(url),
                Some((
                    ForgeKind::GitHub,
                    "https://api.github.com".into(),
                    "rust-lang/cargo".into()
                )),
                "{url}"
            );
        }
        assert_eq!(
            known_forge("https://codeberg.org/forgejo/forgejo").map(|f| f.0),
            Some(ForgeKind::Gitea)
        );
        assert_eq!(known_forge("https://github.com/only-owner"), None);
        assert_eq!(known_forge("https://example.org/a/b"), None);
        assert_eq!(known_forge("/srv/git/demo.git"), None);
    }
}
