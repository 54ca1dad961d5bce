//! Comparing what a node serves with what its log gives.
//!
//! Both sides are the node's JSON: the served matrix as fetched, the
//! derived one rendered by the same function the node renders with
//! ([`crate::DerivedMatrix`]). So statuses and outcomes compare as the
//! strings the API names them, and a status added to the core later is
//! compared like the others without a change here.
//!
//! Rules (docs/operating.md, "Checking a node from outside"):
//!
//! - only fields the derived matrix has are compared: a node of a newer
//!   version may serve more;
//! - a value that depends on leases (a cell's status, `broken`) matches
//!   when it is the log's with every lease live or with every lease
//!   lapsed; every other value must be equal;
//! - rows are matched by commit, cells by column, results by entry id;
//! - a cell's `claimed_by` is not compared: a node extends leases with
//!   renewals, which travel by gossip and are not in the log.

use crate::derive::DerivedMatrix;
use crate::finding::{At, Finding};
use buildmesh_protocol::ProjectId;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A project as the node lists it (`GET /api/v1/projects`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedProject {
    /// Its id, as served.
    pub project: String,
    /// Its name, as served.
    pub name: String,
}

impl ServedProject {
    /// The projects of a `GET /api/v1/projects` answer, or what is wrong
    /// with it.
    pub fn list(answer: &Value) -> Result<Vec<ServedProject>, String> {
        let projects = answer
            .get("projects")
            .and_then(Value::as_array)
            .ok_or("not a JSON object with a `projects` list")?;
        projects
            .iter()
            .map(|p| {
                let project = p.get("project").and_then(Value::as_str);
                let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                project
                    .map(|id| ServedProject {
                        project: id.to_owned(),
                        name: name.to_owned(),
                    })
                    .ok_or_else(|| "a project without a `project` id".to_owned())
            })
            .collect()
    }
}

/// Findings about which projects the node lists: those the log declares
/// and the node does not list, and those it lists that the log does not
/// give. With `only`, just that project.
pub fn compare_projects(
    served: &[ServedProject],
    derived: &BTreeMap<ProjectId, DerivedMatrix>,
    only: Option<&ProjectId>,
) -> Vec<Finding> {
    let wanted = |id: &ProjectId| only.is_none_or(|only| only == id);
    let mut findings = Vec::new();
    let mut listed = BTreeSet::new();
    for project in served {
        let id = project.project.parse::<ProjectId>().ok();
        if let Some(id) = id {
            listed.insert(id);
        }
        let in_log = id.is_some_and(|id| derived.contains_key(&id));
        if !in_log && id.as_ref().is_none_or(wanted) {
            let at = At::project(&project.project, &project.name);
            findings.push(Finding::ProjectNotInLog { at });
        }
    }
    for (id, matrix) in derived {
        if wanted(id) && !listed.contains(id) {
            let at = At::project(&id.to_string(), &matrix.name);
            findings.push(Finding::ProjectNotServed { at });
        }
    }
    findings
}

/// Findings about one project's served matrix. `log_holds` says whether
/// the log holds an entry of this id (hex), to tell a result the node made
/// up from one it shows where it does not count.
pub fn compare_matrix(
    served: &Value,
    derived: &DerivedMatrix,
    log_holds: &dyn Fn(&str) -> bool,
) -> Vec<Finding> {
    let at = At::project(&derived.project.to_string(), &derived.name);
    let mut findings = Vec::new();
    let Some(served_rows) = served.get("rows").and_then(Value::as_array) else {
        findings.push(Finding::MatrixUnreadable {
            at,
            error: "not a JSON object with a `rows` list".into(),
        });
        return findings;
    };
    let sides = Sides {
        live: &derived.live,
        lapsed: &derived.lapsed,
    };
    let mut comparing = Comparing {
        log_holds,
        platforms: derived.live.get("platforms").and_then(Value::as_array),
        findings,
    };
    comparing.fields(&at, "", served, sides, &["rows"]);
    comparing.rows(&at, served_rows, sides);
    comparing.findings
}

/// The log's two readings of one value: with every lease live, and with
/// every lease lapsed.
#[derive(Clone, Copy)]
struct Sides<'a> {
    live: &'a Value,
    lapsed: &'a Value,
}

impl<'a> Sides<'a> {
    /// The field `key` of both.
    fn get(self, key: &str) -> Sides<'a> {
        Sides {
            live: self.live.get(key).unwrap_or(&Value::Null),
            lapsed: self.lapsed.get(key).unwrap_or(&Value::Null),
        }
    }

    /// The values a served one may be, each once.
    fn values(self) -> Vec<Value> {
        if self.live == self.lapsed {
            vec![self.live.clone()]
        } else {
            vec![self.live.clone(), self.lapsed.clone()]
        }
    }

    fn admits(self, served: &Value) -> bool {
        served == self.live || served == self.lapsed
    }

    /// The keys of both objects.
    fn keys(self) -> BTreeSet<&'a str> {
        [self.live, self.lapsed]
            .into_iter()
            .filter_map(Value::as_object)
            .flat_map(|o| o.keys().map(String::as_str))
            .collect()
    }
}

struct Comparing<'a> {
    log_holds: &'a dyn Fn(&str) -> bool,
    platforms: Option<&'a Vec<Value>>,
    findings: Vec<Finding>,
}

impl Comparing<'_> {
    /// Every field the log's side has, but those in `skip`.
    fn fields(&mut self, at: &At, prefix: &str, served: &Value, sides: Sides<'_>, skip: &[&str]) {
        for key in sides.keys() {
            if skip.contains(&key) {
                continue;
            }
            let served = served.get(key).unwrap_or(&Value::Null);
            let sides = sides.get(key);
            if !sides.admits(served) {
                self.findings.push(Finding::Differs {
                    at: at.clone(),
                    field: format!("{prefix}{key}"),
                    served: served.clone(),
                    derived: sides.values(),
                });
            }
        }
    }

    fn rows(&mut self, at: &At, served_rows: &[Value], sides: Sides<'_>) {
        let live = by_commit(sides.live.get("rows"));
        let lapsed: BTreeMap<&str, &Value> =
            by_commit(sides.lapsed.get("rows")).into_iter().collect();
        let mut served: BTreeMap<&str, &Value> = BTreeMap::new();
        let mut served_order = Vec::new();
        for (i, row) in served_rows.iter().enumerate() {
            let Some(commit) = row.get("commit").and_then(Value::as_str) else {
                self.findings.push(Finding::MatrixUnreadable {
                    at: at.clone(),
                    error: format!("row {i} has no commit"),
                });
                continue;
            };
            served.entry(commit).or_insert(row);
            served_order.push(commit);
        }
        let derived: BTreeSet<&str> = live.iter().map(|(commit, _)| *commit).collect();
        for (commit, _) in &live {
            if !served.contains_key(commit) {
                self.findings
                    .push(Finding::RowNotServed { at: at.row(commit) });
            }
        }
        for commit in served.keys().filter(|c| !derived.contains(*c)) {
            self.findings
                .push(Finding::RowNotInLog { at: at.row(commit) });
        }
        self.order(at, &served_order, &live);
        for (commit, live_row) in &live {
            if let Some(served_row) = served.get(commit) {
                let lapsed_row = lapsed.get(commit).copied().unwrap_or(live_row);
                let sides = Sides {
                    live: live_row,
                    lapsed: lapsed_row,
                };
                self.row(&at.row(commit), served_row, sides);
            }
        }
    }

    /// The commits both sides show must come in the same order, once each.
    fn order(&mut self, at: &At, served_order: &[&str], live: &[(&str, &Value)]) {
        let derived: BTreeSet<&str> = live.iter().map(|(commit, _)| *commit).collect();
        let served_common: Vec<&str> = served_order
            .iter()
            .copied()
            .filter(|c| derived.contains(c))
            .collect();
        let served_set: BTreeSet<&str> = served_order.iter().copied().collect();
        let derived_common: Vec<&str> = live
            .iter()
            .map(|(commit, _)| *commit)
            .filter(|c| served_set.contains(c))
            .collect();
        if served_common != derived_common {
            self.findings.push(Finding::RowsOutOfOrder {
                at: at.clone(),
                served: served_common.iter().map(|c| (*c).to_owned()).collect(),
                derived: derived_common.iter().map(|c| (*c).to_owned()).collect(),
            });
        }
    }

    fn row(&mut self, at: &At, served: &Value, sides: Sides<'_>) {
        self.fields(at, "", served, sides, &["cells"]);
        let cells = |row: &Value| row.get("cells").and_then(Value::as_array).cloned();
        let (Some(live), Some(lapsed)) = (cells(sides.live), cells(sides.lapsed)) else {
            return;
        };
        let served_cells = cells(served).unwrap_or_default();
        if served_cells.len() != live.len() {
            self.findings.push(Finding::Differs {
                at: at.clone(),
                field: "cells".into(),
                served: served.get("cells").cloned().unwrap_or(Value::Null),
                derived: vec![Value::from(live.len())],
            });
        }
        for (column, served_cell) in served_cells.iter().enumerate().take(live.len()) {
            let platform = self.platform(column);
            let sides = Sides {
                live: &live[column],
                lapsed: lapsed.get(column).unwrap_or(&live[column]),
            };
            self.cell(&at.cell(&platform), served_cell, sides);
        }
    }

    /// The platform of a column, as the log declares it.
    fn platform(&self, column: usize) -> String {
        self.platforms
            .and_then(|p| p.get(column))
            .and_then(Value::as_str)
            .map_or_else(|| format!("column {column}"), str::to_owned)
    }

    fn cell(&mut self, at: &At, served: &Value, sides: Sides<'_>) {
        let status = served.get("status").unwrap_or(&Value::Null);
        if !sides.get("status").admits(status) {
            self.findings.push(Finding::CellStatus {
                at: at.clone(),
                served: status.clone(),
                derived: sides.get("status").values(),
            });
        }
        self.results(at, served.get("results"), sides.get("results"));
        self.fields(at, "", served, sides, &["status", "results", "claimed_by"]);
    }

    /// Results are matched by entry id: made up, not counted, dropped;
    /// those on both sides field by field.
    fn results(&mut self, at: &At, served: Option<&Value>, sides: Sides<'_>) {
        let Some(live) = sides.live.as_array() else {
            return;
        };
        let Some(served_list) = served.and_then(Value::as_array) else {
            self.findings.push(Finding::Differs {
                at: at.clone(),
                field: "results".into(),
                served: served.cloned().unwrap_or(Value::Null),
                derived: sides.values(),
            });
            return;
        };
        let derived = by_id(live);
        let lapsed = sides
            .lapsed
            .as_array()
            .map(|l| by_id(l))
            .unwrap_or_default();
        let mut served_ids = BTreeSet::new();
        for result in served_list {
            let Some(id) = result.get("id").and_then(Value::as_str) else {
                self.findings.push(Finding::Differs {
                    at: at.clone(),
                    field: "results".into(),
                    served: result.clone(),
                    derived: sides.values(),
                });
                continue;
            };
            served_ids.insert(id);
            match derived.get(id) {
                Some(live_result) => {
                    let sides = Sides {
                        live: live_result,
                        lapsed: lapsed.get(id).copied().unwrap_or(live_result),
                    };
                    let prefix = format!("results[{}].", short(id));
                    self.fields(at, &prefix, result, sides, &["id"]);
                }
                None if (self.log_holds)(id) => self.findings.push(Finding::ResultNotCounted {
                    at: at.clone(),
                    id: id.to_owned(),
                }),
                None => self.findings.push(Finding::ResultNotInLog {
                    at: at.clone(),
                    id: id.to_owned(),
                }),
            }
        }
        for (id, result) in derived.iter().filter(|(id, _)| !served_ids.contains(*id)) {
            self.findings.push(Finding::ResultDropped {
                at: at.clone(),
                id: (*id).to_owned(),
                builder: result.get("builder").cloned().unwrap_or(Value::Null),
                outcome: result.get("outcome").cloned().unwrap_or(Value::Null),
            });
        }
    }
}

/// Rows by commit, in order (rows without a commit are the log's own and
/// never happen).
fn by_commit(rows: Option<&Value>) -> Vec<(&str, &Value)> {
    rows.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|row| Some((row.get("commit")?.as_str()?, row)))
        .collect()
}

fn by_id(results: &[Value]) -> BTreeMap<&str, &Value> {
    results
        .iter()
        .filter_map(|r| Some((r.get("id")?.as_str()?, r)))
        .collect()
}

/// The first 12 characters of an id, for a field path.
fn short(id: &str) -> String {
    crate::text::printable(id, 12)
}

#[cfg(test)]
mod tests;
