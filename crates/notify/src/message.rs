//! What a recipient reads: one message per commit's row, rendered as a
//! mail, an IRC line or a JSON body.

use buildmesh_core::notify::{Event, EventKind};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Lines of a failing step's log a message quotes, at most.
pub const LOG_LINES_MAX: usize = 20;

/// Bytes of one quoted log line, at most (longer lines are cut).
pub const LOG_LINE_BYTES_MAX: usize = 300;

/// Everything a message about one event says, gathered by the node from
/// its views (the event alone names commits and platforms, not people).
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The event.
    pub event: Event,
    /// The project's name.
    pub project_name: String,
    /// The commit's title (first line of its message).
    pub title: String,
    /// The commit's git author.
    pub author: String,
    /// Each platform the event names, with what the build said.
    pub platforms: Vec<PlatformNote>,
    /// For a broken build: the commits since the last that passed, oldest
    /// first, this one last.
    pub blamelist: Vec<Suspect>,
    /// The commit's page on the node's public URL, if one is configured.
    pub link: Option<String>,
}

/// One platform's part of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformNote {
    /// The platform label.
    pub platform: String,
    /// `passed`, `failed` or `error`.
    pub outcome: String,
    /// The step that failed, if one did.
    pub step: Option<String>,
    /// The last lines of that step's log (cut to [`LOG_LINES_MAX`]).
    pub log_tail: Vec<String>,
    /// The result's page on the public URL.
    pub link: Option<String>,
}

/// One commit of a blamelist.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    /// The commit id, hex.
    pub commit: String,
    /// Its git author.
    pub author: String,
    /// Its title.
    pub title: String,
}

/// The last [`LOG_LINES_MAX`] lines of `log`, each cut to
/// [`LOG_LINE_BYTES_MAX`] bytes, without control characters (a log is
/// written by whatever ran; a mail or an IRC line must not carry its
/// escape sequences or line breaks).
pub fn log_tail(log: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(log);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines.len().saturating_sub(LOG_LINES_MAX);
    lines[from..].iter().map(|l| clean(l)).collect()
}

/// `text` without terminal escape sequences (colours, cursor moves) and
/// other control characters (tabs become spaces), cut to
/// [`LOG_LINE_BYTES_MAX`] bytes on a character boundary.
fn clean(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            skip_escape(&mut chars);
            continue;
        }
        let c = if c == '\t' { ' ' } else { c };
        if c.is_control() {
            continue;
        }
        if out.len() + c.len_utf8() > LOG_LINE_BYTES_MAX {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// Skips the rest of an escape sequence: a CSI (`ESC [` … a final byte
/// from `@` to `~`), or an ESC and one more character.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    if chars.next_if_eq(&'[').is_none() {
        chars.next();
        return;
    }
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            return;
        }
    }
}

impl Notice {
    /// The event's kind in the words of a message.
    fn verb(&self) -> &'static str {
        match self.event.kind {
            EventKind::Broken => "broken",
            EventKind::Fixed => "fixed",
            EventKind::StillFailing => "still failing",
            EventKind::Decided => "built",
            EventKind::Regression => "regressed",
            EventKind::Disagree => "has builders disagreeing",
            EventKind::Flaky => "flaky",
            EventKind::Differs => "built differently",
        }
    }

    /// The commit's short id (8 hex digits).
    pub fn short(&self) -> String {
        let hex = self.event.commit.to_string();
        hex[..hex.len().min(8)].to_owned()
    }

    /// "main broken on linux and mac by 8d3e1f2a": the headline of every
    /// form.
    pub fn headline(&self) -> String {
        let event = &self.event;
        let on = match event.kind {
            EventKind::Decided => self.verdicts(),
            EventKind::Regression => {
                format!("{} on {}", self.metrics(), and_list(&event.platforms))
            }
            _ => format!("on {}", and_list(&event.platforms)),
        };
        let by = match event.kind {
            EventKind::Broken | EventKind::Fixed => "by",
            _ => "at",
        };
        format!(
            "{} {} {on} {by} {}",
            event.branch,
            self.verb(),
            self.short()
        )
    }

    /// For a regression: the metrics that crossed ("coverage_lines and
    /// mccabe_max").
    fn metrics(&self) -> String {
        let mut names: Vec<String> = self
            .event
            .crossings
            .iter()
            .map(|c| clean(&c.metric))
            .collect();
        names.sort();
        names.dedup();
        const SHOWN: usize = 3;
        if names.len() > SHOWN {
            let more = names.len() - SHOWN;
            names.truncate(SHOWN);
            names.push(format!("{more} more"));
        }
        and_list(&names)
    }

    /// For a decided row: "failed on linux, passed on mac".
    fn verdicts(&self) -> String {
        let mut parts = Vec::new();
        for outcome in [
            "failed", "disagree", "flaky", "differs", "error", "passed", "skipped",
        ] {
            let on: Vec<String> = self
                .platforms
                .iter()
                .filter(|p| p.outcome == outcome)
                .map(|p| p.platform.clone())
                .collect();
            if !on.is_empty() {
                parts.push(format!("{outcome} on {}", and_list(&on)));
            }
        }
        parts.join(", ")
    }

    /// A mail's subject.
    pub fn subject(&self) -> String {
        format!("[{}] {}", clean(&self.project_name), self.headline())
    }

    /// One IRC line: the headline, who, and the link.
    pub fn line(&self) -> String {
        let mut line = format!(
            "[{}] {} ({}: {})",
            clean(&self.project_name),
            self.headline(),
            author_name(&self.author),
            clean(&self.title)
        );
        if let Some(link) = &self.link {
            line.push(' ');
            line.push_str(link);
        }
        line
    }

    /// A mail's plain-text body.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.headline());
        out += &format!("Project  {}\n", self.project_name);
        out += &format!("Commit   {}\n", self.event.commit);
        out += &format!("Title    {}\n", clean(&self.title));
        out += &format!("Author   {}\n", clean(&self.author));
        if let Some(link) = &self.link {
            out += &format!("Page     {link}\n");
        }
        if self.blamelist.len() > 1 || self.event.kind == EventKind::Broken {
            out += "\nBlamelist (the commits since the last passing build):\n";
            for suspect in &self.blamelist {
                let short = &suspect.commit[..suspect.commit.len().min(8)];
                out += &format!(
                    "  {short}  {}  {}\n",
                    clean(&suspect.author),
                    clean(&suspect.title)
                );
            }
        }
        if !self.event.crossings.is_empty() {
            out += "\nThresholds crossed:\n";
            for c in &self.event.crossings {
                out += &format!(
                    "  {}: {} {} -> {} (threshold: {})\n",
                    clean(&c.platform),
                    clean(&c.metric),
                    number(c.previous),
                    number(c.value),
                    clean(&c.threshold)
                );
            }
        }
        for platform in &self.platforms {
            out += &format!("\n{}: {}", platform.platform, platform.outcome);
            if let Some(step) = &platform.step {
                out += &format!(", step \"{}\" failed", clean(step));
            }
            out += "\n";
            if let Some(link) = &platform.link {
                out += &format!("  {link}\n");
            }
            for line in &platform.log_tail {
                out += &format!("  | {line}\n");
            }
        }
        out += "\n-- \nbuildmesh: continuous integration with no master\n";
        out
    }

    /// A stable id for the event: the same event has the same id on every
    /// node and after restarts, so a receiver can drop duplicates.
    pub fn id(&self) -> String {
        let event = &self.event;
        let mut hash = Sha256::new();
        hash.update(event.project.0);
        hash.update(event.branch.as_bytes());
        hash.update([0]);
        hash.update(event.commit.as_bytes());
        hash.update(self.kind_name().as_bytes());
        hex::encode(&hash.finalize()[..16])
    }

    /// The kind's name in JSON and CloudEvents types.
    pub fn kind_name(&self) -> &'static str {
        self.event.kind.name()
    }

    /// The event as data (the `data` of a CloudEvent): the schema
    /// docs/notify.md documents.
    pub fn data(&self) -> Value {
        let event = &self.event;
        json!({
            "project": { "id": event.project.to_string(), "name": self.project_name },
            "branch": event.branch,
            "commit": {
                "id": event.commit.to_string(),
                "title": self.title,
                "author": self.author,
            },
            "kind": self.kind_name(),
            "headline": self.headline(),
            "at": event.at.rfc3339(),
            "link": self.link,
            "platforms": self.platforms.iter().map(|p| json!({
                "platform": p.platform,
                "outcome": p.outcome,
                "failed_step": p.step,
                "log_tail": p.log_tail,
                "link": p.link,
            })).collect::<Vec<_>>(),
            "blamelist": self.blamelist.iter().map(|s| json!({
                "commit": s.commit,
                "author": s.author,
                "title": s.title,
            })).collect::<Vec<_>>(),
            "crossings": event.crossings.iter().map(|c| json!({
                "platform": c.platform,
                "metric": c.metric,
                "threshold": c.threshold,
                "previous": c.previous,
                "value": c.value,
                "result": c.result.to_string(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The event in a CloudEvents 1.0 structured-mode envelope, `source`
    /// naming the node that sent it.
    pub fn cloudevent(&self, source: &str) -> Value {
        json!({
            "specversion": "1.0",
            "type": format!("org.buildmesh.build.{}", self.kind_name()),
            "source": source,
            "id": self.id(),
            "time": self.event.at.rfc3339(),
            "subject": format!("{}/{}/{}", self.project_name, self.event.branch, self.event.commit),
            "datacontenttype": "application/json",
            "data": self.data(),
        })
    }

    /// A Slack incoming-webhook body (also taken by Mattermost, Rocket.Chat
    /// and Discord's `/slack` endpoints).
    pub fn slack(&self) -> Value {
        json!({ "text": format!("{}\n```{}```", self.line(), self.text()) })
    }

    /// A Matrix `m.room.message` event body.
    pub fn matrix(&self) -> Value {
        json!({ "msgtype": "m.text", "body": format!("{}\n\n{}", self.line(), self.text()) })
    }
}

/// A metric's value as people read it: at most four decimals, no
/// trailing zeros (`78.5`, `80`).
fn number(value: f64) -> String {
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The name part of a git author (`Ada <ada@example.org>` → `Ada`).
fn author_name(author: &str) -> String {
    let name = author.split('<').next().unwrap_or(author).trim();
    clean(if name.is_empty() { author } else { name })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use buildmesh_protocol::{CommitId, ProjectId, Timestamp};

    pub(crate) fn notice(kind: EventKind) -> Notice {
        let commit = CommitId::from_bytes(&[0x8d; 20]).unwrap();
        Notice {
            event: Event {
                project: ProjectId([1; 32]),
                branch: "main".into(),
                commit: commit.clone(),
                kind,
                platforms: vec!["linux-aarch64".into(), "freebsd-x86_64".into()],
                blamelist: vec![commit.clone()],
                at: Timestamp(1_764_000_000_000),
                row_decided: true,
                crossings: Vec::new(),
            },
            project_name: "demo".into(),
            title: "Make parsing faster".into(),
            author: "Ada Lovelace <ada@example.org>".into(),
            platforms: ["linux-aarch64", "freebsd-x86_64"]
                .iter()
                .map(|p| PlatformNote {
                    platform: p.to_string(),
                    outcome: "failed".into(),
                    step: Some("test".into()),
                    log_tail: log_tail(b"running 3 tests\n\x1b[31mFAILED\x1b[0m parse::fast\n"),
                    link: Some(format!("https://ci.example.org/results/{p}")),
                })
                .collect(),
            blamelist: vec![Suspect {
                commit: commit.to_string(),
                author: "Ada Lovelace <ada@example.org>".into(),
                title: "Make parsing faster".into(),
            }],
            link: Some("https://ci.example.org/projects/p/commits/c".into()),
        }
    }

    #[test]
    fn a_regression_names_its_metrics_values_and_threshold() {
        let mut regressed = notice(EventKind::Regression);
        regressed.event.platforms = vec!["linux-aarch64".into()];
        regressed.event.crossings = vec![buildmesh_core::notify::Crossing {
            platform: "linux-aarch64".into(),
            metric: "coverage_lines".into(),
            threshold: "coverage_lines drop 1".into(),
            previous: 80.0,
            value: 78.5,
            result: buildmesh_protocol::EntryId([7; 32]),
        }];
        assert_eq!(
            regressed.headline(),
            "main regressed coverage_lines on linux-aarch64 at 8d8d8d8d"
        );
        let text = regressed.text();
        assert!(
            text.contains(
                "linux-aarch64: coverage_lines 80 -> 78.5 (threshold: coverage_lines drop 1)"
            ),
            "{text}"
        );
        let data = regressed.data();
        assert_eq!(data["kind"], "regression");
        assert_eq!(data["crossings"][0]["value"], 78.5);
        assert_eq!(data["crossings"][0]["threshold"], "coverage_lines drop 1");
    }

    #[test]
    fn one_headline_names_every_platform_and_the_commit() {
        let broken = notice(EventKind::Broken);
        assert_eq!(
            broken.headline(),
            "main broken on linux-aarch64 and freebsd-x86_64 by 8d8d8d8d"
        );
        assert_eq!(
            broken.subject(),
            "[demo] main broken on linux-aarch64 and freebsd-x86_64 by 8d8d8d8d"
        );
        let text = broken.text();
        assert!(text.contains("Blamelist"), "{text}");
        assert!(text.contains("step \"test\" failed"), "{text}");
        assert!(
            text.contains("| FAILED parse::fast"),
            "escapes dropped: {text}"
        );
        assert!(!text.contains('\x1b'));
        assert!(broken.line().starts_with("[demo] main broken on"));
        assert!(
            broken
                .line()
                .contains("(Ada Lovelace: Make parsing faster)")
        );
        assert!(!broken.line().contains('\n'));
    }

    #[test]
    fn a_cloudevent_has_the_required_attributes_and_a_stable_id() {
        let event = notice(EventKind::Fixed).cloudevent("https://ci.example.org");
        for attribute in ["specversion", "type", "source", "id"] {
            assert!(event[attribute].is_string(), "{attribute}");
        }
        assert_eq!(event["type"], "org.buildmesh.build.fixed");
        assert_eq!(event["time"], "2025-11-24T16:00:00.000Z");
        assert_eq!(event["id"], notice(EventKind::Fixed).id());
        assert_ne!(event["id"], notice(EventKind::Broken).id());
        assert_eq!(event["data"]["platforms"][0]["failed_step"], "test");
    }

    #[test]
    fn log_tails_are_the_last_lines_cut_short() {
        let log: String = (0..100).map(|n| format!("line {n}\n")).collect();
        let tail = log_tail(log.as_bytes());
        assert_eq!(tail.len(), LOG_LINES_MAX);
        assert_eq!(tail.last().unwrap(), "line 99");
        let long = log_tail("é".repeat(1000).as_bytes());
        assert!(long[0].len() <= LOG_LINE_BYTES_MAX + '…'.len_utf8());
    }
}
