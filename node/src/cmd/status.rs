//! `buildmesh status`: the platform matrix in the terminal.

use crate::cli::StatusArgs;
use crate::client::{NodeApi, error_text};
use crate::data_dir::DataDir;
use anyhow::{Result, bail};
use buildmesh_core::view::{Named, NotSelected, select_project};
use buildmesh_protocol::{CommitId, ProjectId, PublicKey};
use serde_json::Value;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Prints each project's matrix; exits 1 if any shown newest commit has a
/// failed cell (handy in scripts), 0 otherwise.
pub fn run(args: StatusArgs) -> Result<ExitCode> {
    if !(1..=1000).contains(&args.rows) {
        bail!("--rows must be 1 to 1000");
    }
    let env_dir = std::env::var_os("BUILDMESH_DATA_DIR").filter(|d| !d.is_empty());
    let data_dir = DataDir::for_command(env_dir.map(Into::into));
    let api = NodeApi::locate(args.node.as_deref(), &data_dir)?;
    let (code, body) = api.get("/api/v1/projects")?;
    if code != 200 {
        bail!("{}", error_text(code, &body));
    }
    let known: Vec<(ProjectId, String, PublicKey)> = body["projects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let id = p["project"].as_str()?.parse().ok()?;
            let owner = p["owner"].as_str()?.parse().ok()?;
            Some((id, p["name"].as_str().unwrap_or("").to_owned(), owner))
        })
        .collect();
    let projects: Vec<String> = match &args.project {
        Some(selector) => vec![select(&known, selector)?],
        None => known.iter().map(|(id, ..)| id.to_string()).collect(),
    };
    if projects.is_empty() {
        println!(
            "no projects yet (declare one with `buildmesh project declare`, or run `buildmesh up`)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let paint = Paint::new();
    let mut broken = false;
    let mut seen = std::collections::BTreeSet::new();
    for project in projects {
        let mut path = format!("/api/v1/projects/{project}/matrix?rows={}", args.rows);
        if let Some(branch) = &args.branch {
            path.push_str(&format!(
                "&branch={}",
                crate::terminal::percent_encode(branch)
            ));
        }
        let (code, matrix) = api.get(&path)?;
        if code != 200 {
            bail!("{}", error_text(code, &matrix));
        }
        if let (Some(branch), Some(_)) = (&args.branch, &args.project)
            && let Some(why) = not_built(&matrix, branch)
        {
            bail!("{why}");
        }
        broken |= print_matrix(&matrix, args.branch.as_deref(), &paint);
        seen.extend(statuses(&matrix));
    }
    if !seen.is_empty() {
        println!("{}", paint.legend(&seen));
    }
    Ok(if broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Every cell status a matrix shows.
fn statuses(matrix: &Value) -> Vec<String> {
    matrix["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["cells"].as_array().into_iter().flatten())
        .filter_map(|cell| cell["status"].as_str())
        .map(str::to_owned)
        .collect()
}

/// Most projects an error lists.
const LISTED_MAX: usize = 20;

/// The id of the project `selector` names among `known` (id, name,
/// owner): its name, its full id, or a unique prefix of its id (as
/// `status` prints them; the rule badges follow too,
/// [`select_project`]), each refused with what to give instead.
pub(super) fn select(known: &[(ProjectId, String, PublicKey)], selector: &str) -> Result<String> {
    let named: Vec<Named<'_>> = known
        .iter()
        .map(|(id, name, owner)| Named {
            id: *id,
            name,
            owner: *owner,
        })
        .collect();
    match select_project(&named, selector, None) {
        Ok(project) => Ok(project.id.to_string()),
        Err(NotSelected::Unknown) => {
            let mut names: Vec<String> = named
                .iter()
                .take(LISTED_MAX)
                .map(|p| format!("{} ({})", short(p.name, 64), p.id.short()))
                .collect();
            if named.len() > LISTED_MAX {
                names.push(format!("and {} more", named.len() - LISTED_MAX));
            }
            bail!(
                "no project {:?} on this node; it has: {}",
                short(selector, 100),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )
        }
        Err(NotSelected::Ambiguous(matching)) => {
            let mut ids: Vec<String> = matching
                .iter()
                .take(LISTED_MAX)
                .map(|p| format!("{} {} (owner {})", short(p.name, 64), p.id, p.owner))
                .collect();
            if matching.len() > LISTED_MAX {
                ids.push(format!("and {} more", matching.len() - LISTED_MAX));
            }
            bail!(
                "{:?} names {} projects: {}; give more of the id",
                short(selector, 100),
                matching.len(),
                ids.join(", ")
            )
        }
    }
}

/// Why `branch` shows no commits of `matrix`, if it is not one the project
/// builds (and none was announced on it): a typo should not read as "no
/// commits yet".
fn not_built(matrix: &Value, branch: &str) -> Option<String> {
    let rows = matrix["rows"].as_array().map_or(0, Vec::len);
    let declared: Vec<String> = matrix["branches"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.as_str().map(|b| short(b, 100)))
        .collect();
    (rows == 0 && !declared.iter().any(|b| b == branch)).then(|| {
        format!(
            "branch {:?} is not one project {} builds; it builds: {}",
            short(branch, 100),
            short(matrix["name"].as_str().unwrap_or(""), 64),
            if declared.is_empty() {
                "no branch".to_owned()
            } else {
                declared.join(", ")
            }
        )
    })
}

/// Prints one matrix (of `branch`, if one was asked for); returns whether
/// its newest commit has a failed cell.
fn print_matrix(matrix: &Value, branch: Option<&str>, paint: &Paint) -> bool {
    let text = |v: &Value| short(v.as_str().unwrap_or(""), 200);
    println!(
        "{} {}  {}",
        paint.bold(&text(&matrix["name"])),
        short(&text(&matrix["project"]), 12),
        text(&matrix["repository"])
    );
    let platforms: Vec<String> = matrix["platforms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    for (i, platform) in platforms.iter().enumerate() {
        println!("  {}{platform}", "  ".repeat(i));
    }
    let rows = matrix["rows"].as_array().cloned().unwrap_or_default();
    for row in &rows {
        let cells: Vec<String> = row["cells"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|cell| paint.cell(cell["status"].as_str().unwrap_or("")))
            .collect();
        println!(
            "  {} {}  {}",
            cells.join(" "),
            commit_text(&text(&row["commit"])),
            short(&text(&row["title"]), 60)
        );
    }
    match branch.and_then(|b| not_built(matrix, b)) {
        Some(why) => println!("  {why}"),
        None if rows.is_empty() => println!("  no commits announced yet"),
        None => {}
    }
    println!();
    rows.first().is_some_and(|row| {
        row["cells"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["status"] == "failed")
    })
}

/// A commit as `git log --oneline` shows it ([`CommitId::short`]), or at
/// most 10 characters of what the node sent if that is no commit id.
fn commit_text(text: &str) -> String {
    text.parse::<CommitId>()
        .map_or_else(|_| short(text, 10), |commit| commit.short())
}

/// At most `max` characters of `text`, printable (anyone can write a
/// commit title or a project name).
fn short(text: &str, max: usize) -> String {
    crate::terminal::printable(text, max)
}

/// ANSI colours, only for a terminal and unless NO_COLOR is set.
struct Paint {
    on: bool,
}

impl Paint {
    fn new() -> Paint {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Paint {
            on: std::io::stdout().is_terminal() && !no_color,
        }
    }

    fn bold(&self, text: &str) -> String {
        self.wrap("1", text)
    }

    /// A cell as one symbol: passed ✓, failed ✗, error !, building …,
    /// disagree ≠, flaky ≈, differs ≢, skipped –, pending ·; coloured when
    /// painting.
    fn cell(&self, status: &str) -> String {
        let (symbol, colour) = match status {
            "passed" => ("✓", "32"),
            "failed" => ("✗", "31"),
            "error" => ("!", "33"),
            "building" => ("…", "36"),
            "disagree" => ("≠", "35"),
            "flaky" => ("≈", "35"),
            "skipped" => ("–", "90"),
            "differs" => ("≢", "35"),
            _ => ("·", "90"),
        };
        self.wrap(colour, symbol)
    }

    /// What each symbol shown means, by name: symbols alone
    /// are not enough for a state a person may not have met yet.
    fn legend(&self, seen: &std::collections::BTreeSet<String>) -> String {
        let words: Vec<String> = seen
            .iter()
            .map(|status| format!("{} {status}", self.cell(status)))
            .collect();
        words.join("  ")
    }

    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_legend_names_each_symbol_shown() {
        let seen = ["passed", "disagree", "differs"].map(str::to_owned).into();
        assert_eq!(
            Paint { on: false }.legend(&seen),
            "≢ differs  ≠ disagree  ✓ passed"
        );
    }

    /// Issue 16, item 3: `status --project` takes what `status` prints.
    #[test]
    fn a_project_is_named_by_name_id_or_unique_prefix() {
        let a = "e4079666f42c".to_owned() + &"0".repeat(52);
        let b = "e4071111aaaa".to_owned() + &"1".repeat(52);
        let owner = PublicKey([7; 32]);
        let known = vec![
            (a.parse().unwrap(), "hello".to_owned(), owner),
            (b.parse().unwrap(), "other".to_owned(), owner),
        ];
        assert_eq!(select(&known, "hello").unwrap(), a);
        assert_eq!(select(&known, &a).unwrap(), a);
        assert_eq!(select(&known, "E4079666F42C").unwrap(), a);
        assert_eq!(select(&known, "e4071").unwrap(), b);
        let both = select(&known, "e407").unwrap_err().to_string();
        assert!(both.contains("names 2 projects"), "{both}");
        let none = select(&known, "nope").unwrap_err().to_string();
        assert!(none.contains("hello (e4079666f42c)"), "{none}");
    }

    /// Issue 16, item 3: `--branch nope` said "no commits announced yet".
    #[test]
    fn a_branch_the_project_does_not_build_is_named_as_such() {
        let matrix = serde_json::json!({
            "name": "hello", "branches": ["main", "dev"], "rows": [],
        });
        let why = not_built(&matrix, "nope").unwrap();
        assert_eq!(
            why,
            "branch \"nope\" is not one project hello builds; it builds: main, dev"
        );
        assert_eq!(not_built(&matrix, "dev"), None);
        let announced = serde_json::json!({
            "name": "hello", "branches": ["main"], "rows": [{"commit": "ab"}],
        });
        assert_eq!(not_built(&announced, "old-branch"), None);
    }
}
