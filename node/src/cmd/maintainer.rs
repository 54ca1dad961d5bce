//! `buildmesh project`, `announce`, `force`: a maintainer signs an entry
//! and hands it to a node, which spreads it to the mesh.

use crate::cli::{
    AnnounceArgs, DeclareArgs, ForceArgs, RoleArg, SignerArgs, ThresholdsArgs, TrustArgs,
};
use crate::client::{NodeApi, error_text};
use crate::clock;
use crate::config::detected_platform;
use crate::data_dir::DataDir;
use crate::keyfile;
use crate::maintainer::MaintainerKey;
use anyhow::{Context, Result, bail};
use buildmesh_core::log::AUTHOR_ENTRIES_MAX;
use buildmesh_core::view::{Described, parse_threshold};
use buildmesh_protocol::{
    Body, BuilderPolicy, BuilderRevocation, CommitAnnouncement, CommitId, Entry, EntryId,
    ForceBuild, ForceTarget, ProjectDeclaration, ProjectId, ProjectSetting, PublicKey, Role,
    Setting, SettingKind, TrustChange,
};
use ed25519_dalek::SigningKey;
use std::path::PathBuf;
use std::process::ExitCode;

/// `buildmesh project declare`
pub fn declare(args: DeclareArgs) -> Result<ExitCode> {
    let builders = if args.open {
        BuilderPolicy::Open
    } else if args.builders.is_empty() {
        bail!(
            "say whose results count: --builder KEY (repeatable; a node prints its key \
             with `buildmesh id`) or --open for anyone's"
        );
    } else {
        BuilderPolicy::Only(parse_keys(&args.builders, "--builder")?)
    };
    let platforms = if args.platforms.is_empty() {
        vec![detected_platform()]
    } else {
        args.platforms
    };
    let declaration = ProjectDeclaration {
        name: args.name,
        repository: args.repo,
        branches: args.branches,
        platforms,
        announcers: parse_keys(&args.announcers, "--announcer")?,
        builders,
        builds_per_cell: args.builds_per_cell,
    };
    let name = declaration.name.clone();
    let (entry, signer) = sign_and_send(&args.signer, Body::Project(declaration))?;
    let project = ProjectId::derive(&signer, &name);
    println!("declared project {name}: {project}");
    println!("entry {}", entry.id());
    set_switch(
        &args.signer,
        project,
        Setting::PullRequests(args.pull_requests),
    )?;
    set_switch(
        &args.signer,
        project,
        Setting::Reproducible(args.reproducible),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Writes one of the project's on/off settings if it changes what the key
/// last set (never set counts as off): its flag turns it on, a
/// declaration without the flag turns it off again.
fn set_switch(signer: &SignerArgs, project: ProjectId, setting: Setting) -> Result<()> {
    let (on, what) = match setting {
        Setting::PullRequests(on) => (on, "pull request builds"),
        Setting::Reproducible(on) => (on, "reproducible artifacts required"),
        Setting::Thresholds(_) => return Ok(()),
    };
    let kind = setting.kind();
    let last = MaintainerKey::open(&key_path(signer))?.latest_setting(&project, kind)?;
    let was_on = matches!(
        last,
        Some(Setting::PullRequests(true) | Setting::Reproducible(true))
    );
    if was_on == on {
        if on {
            println!("{what}: on (already)");
        }
        return Ok(());
    }
    let body = Body::Setting(ProjectSetting { project, setting });
    let (entry, _) = sign_and_send(signer, body)?;
    let state = if on { "on" } else { "off" };
    println!("{what}: {state}: entry {}", entry.id());
    Ok(())
}

/// `buildmesh project trust`
pub fn trust(args: TrustArgs) -> Result<ExitCode> {
    let subject = parse_key(&args.subject, "the key")?;
    let role = match args.role {
        RoleArg::Builder => Role::Builder,
        RoleArg::Announcer => Role::Announcer,
    };
    let (project, _) = project_of(&args.signer, &args.name)?;
    let change = TrustChange {
        project,
        subject,
        role,
    };
    let (body, kept) = match (args.revoke, role) {
        (false, _) => (Body::Trust(change), None),
        (true, Role::Announcer) if args.keep_through.is_some() => {
            bail!("--keep-through keeps part of a builder's results; an announcer has none")
        }
        (true, Role::Announcer) => (Body::Revoke(change), None),
        (true, Role::Builder) => {
            let api = node_api(&args.signer)?;
            let kept_through = kept_through(&api, &subject, args.keep_through.as_deref())?;
            let revocation = BuilderRevocation {
                project,
                subject,
                kept_through,
            };
            (Body::RevokeBuilder(revocation), Some(kept_through))
        }
    };
    let (entry, _) = sign_and_send(&args.signer, body)?;
    let verb = if args.revoke { "revoked" } else { "trusted" };
    println!("{verb} {subject} as {:?} in {}", args.role, args.name);
    match kept {
        Some(0) if args.keep_through.is_none() => {
            println!("the node holds no entry of it: nothing it signs counts")
        }
        Some(0) => println!("none of its results count any more"),
        Some(seq) => println!(
            "its results through entry {seq} of its chain keep counting; nothing it signs after them does"
        ),
        None => {}
    }
    println!("entry {}", entry.id());
    Ok(ExitCode::SUCCESS)
}

/// The last sequence number of `subject`'s chain whose results keep
/// counting: none, the entry `keep` names (which must be the subject's),
/// or the newest the node holds.
fn kept_through(api: &NodeApi, subject: &PublicKey, keep: Option<&str>) -> Result<u64> {
    let (path, what) = match keep {
        Some("none") => return Ok(0),
        Some(id) => {
            let id: EntryId = id.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--keep-through takes `none` or an entry id (64 hex digits), not {id:?}"
                )
            })?;
            (format!("/api/v1/entries/{id}"), "that entry")
        }
        None => (format!("/api/v1/authors/{subject}"), "the builder's chain"),
    };
    let answer = match api.get_json(&path)? {
        (200, Ok(answer)) => answer,
        (200, Err(e)) => bail!("reading {what} from the node: {e}"),
        (status, answer) => bail!(
            "{} (GET {path})",
            error_text(status, &answer.unwrap_or_default())
        ),
    };
    if keep.is_some() && answer["author"].as_str() != Some(subject.to_string().as_str()) {
        bail!("--keep-through names an entry that {subject} did not sign");
    }
    let seq = answer["seq"]
        .as_u64()
        .with_context(|| format!("the node's answer for {what} has no `seq`: {answer}"))?;
    // The node is the maintainer's own, but a number no chain can reach
    // would keep every result the key ever signs: never sign that.
    if seq > AUTHOR_ENTRIES_MAX {
        bail!(
            "the node says {what} reaches entry {seq}, past the {AUTHOR_ENTRIES_MAX} entries \
             any key may sign; check the node, or give --keep-through"
        );
    }
    Ok(seq)
}

/// `buildmesh project thresholds`
pub fn thresholds(args: ThresholdsArgs) -> Result<ExitCode> {
    let (project, _) = project_of(&args.signer, &args.name)?;
    if args.thresholds.is_empty() && !args.clear {
        let set = MaintainerKey::open(&key_path(&args.signer))?
            .latest_setting(&project, SettingKind::Thresholds)?;
        match set {
            Some(Setting::Thresholds(list)) if !list.is_empty() => {
                println!("thresholds of {}:", args.name);
                list.iter().for_each(|t| println!("  {}", Described(t)));
            }
            _ => println!(
                "{} has no thresholds; set some with `buildmesh project thresholds {} \"coverage_lines drop 1\"`",
                args.name, args.name
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let list = args
        .thresholds
        .iter()
        .map(|t| parse_threshold(t))
        .collect::<Result<Vec<_>, _>>()?;
    let body = Body::Setting(ProjectSetting {
        project,
        setting: Setting::Thresholds(list.clone()),
    });
    let (entry, _) = sign_and_send(&args.signer, body)?;
    if list.is_empty() {
        println!("thresholds of {} cleared", args.name);
    }
    list.iter()
        .for_each(|t| println!("threshold set: {}", Described(t)));
    println!("entry {}", entry.id());
    Ok(ExitCode::SUCCESS)
}

/// `buildmesh announce`
pub fn announce(args: AnnounceArgs) -> Result<ExitCode> {
    let dir = args.repo_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let local = buildmesh_runner::describe_local(&dir, &args.rev)?;
    let Some(branch) = args.branch.or(local.branch) else {
        bail!("{} is not on a branch: say which with --branch", args.rev);
    };
    let (project, _) = project_of(&args.signer, &args.project)?;
    let info = local.info;
    let commit = info.commit.clone();
    let body = Body::Announce(CommitAnnouncement {
        project,
        branch: branch.clone(),
        commit: info.commit,
        parents: info.parents,
        title: info.title,
        author: info.author,
        committed_at: info.committed_at,
    });
    let (entry, _) = sign_and_send(&args.signer, body)?;
    println!("announced {commit} on {branch} of {}", args.project);
    println!("entry {}", entry.id());
    Ok(ExitCode::SUCCESS)
}

/// The reason a flaky check's force gives, for the record.
const FLAKY_CHECK_REASON: &str =
    "flaky check: the same commit built again, to tell a flaky test from a broken one";

/// `buildmesh force`
pub fn force(args: ForceArgs) -> Result<ExitCode> {
    let target = match (&args.commit, &args.branch) {
        (Some(commit), _) => ForceTarget::Commit(parse_commit(commit)?),
        (None, Some(branch)) => ForceTarget::Branch(branch.clone()),
        (None, None) => bail!("say what to build: --commit ID or --branch NAME"),
    };
    let (project, _) = project_of(&args.signer, &args.project)?;
    let reason = match (args.flaky_check, args.reason) {
        (true, None) => FLAKY_CHECK_REASON.to_owned(),
        (_, Some(reason)) => reason,
        (false, None) => "forced by the maintainer".to_owned(),
    };
    let body = Body::Force(ForceBuild {
        project,
        target,
        platforms: args.platforms,
        reason,
    });
    let (entry, _) = sign_and_send(&args.signer, body)?;
    println!("forced a build in {}", args.project);
    println!("entry {}", entry.id());
    if args.flaky_check {
        println!(
            "when its result is in, a test that failed before and passes now is listed as \
             flaky (same commit) on /projects/{project}/flaky; one that fails again is broken"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The id of one of the maintainer's projects, named by `selector`: its
/// name, its full id, or a unique start of its id (as `status` prints
/// it) among this key's projects the node knows. A name needs no node: the
/// id derives from the key and the name.
fn project_of(signer: &SignerArgs, selector: &str) -> Result<(ProjectId, PublicKey)> {
    let key = keyfile::read(&key_path(signer))?;
    let public = PublicKey::from(key.verifying_key());
    if let Ok(id) = selector.parse::<ProjectId>() {
        return Ok((id, public));
    }
    let by_name = ProjectId::derive(&public, selector);
    let hexish = selector.len() >= 4 && selector.bytes().all(|b| b.is_ascii_hexdigit());
    if !hexish {
        return Ok((by_name, public));
    }
    let (code, body) = node_api(signer)?.get("/api/v1/projects")?;
    if code != 200 {
        bail!("{}", error_text(code, &body));
    }
    let owner = public.to_string();
    let mine: Vec<ProjectId> = body["projects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["owner"].as_str() == Some(owner.as_str()))
        .filter_map(|p| p["project"].as_str()?.parse().ok())
        .collect();
    Ok((pick(&mine, by_name, selector)?, public))
}

/// `by_name` if it is among `mine` or no id of `mine` starts with
/// `prefix`; else the one that does.
fn pick(mine: &[ProjectId], by_name: ProjectId, prefix: &str) -> Result<ProjectId> {
    if mine.contains(&by_name) {
        return Ok(by_name);
    }
    let prefix = prefix.to_ascii_lowercase();
    let matching: Vec<&ProjectId> = mine
        .iter()
        .filter(|id| id.to_string().starts_with(&prefix))
        .collect();
    match matching[..] {
        [] => Ok(by_name),
        [id] => Ok(*id),
        _ => bail!(
            "{prefix:?} starts the ids of {} of your projects: give more of the id",
            matching.len()
        ),
    }
}

/// Signs `body` with the maintainer key (creating the key on first use),
/// records it, and hands it with the key's latest entries to the node.
fn sign_and_send(signer: &SignerArgs, body: Body) -> Result<(Entry, PublicKey)> {
    let path = key_path(signer);
    if !path.exists() {
        let key = SigningKey::generate(&mut rand::rng());
        keyfile::write_new(&path, &key, false)?;
        eprintln!(
            "created maintainer key {} (public key {}); keep it and {} together",
            path.display(),
            PublicKey::from(key.verifying_key()),
            crate::maintainer::chain_path(&path).display()
        );
    }
    let api = node_api(signer)?;
    let mut key = MaintainerKey::open(&path)?;
    let entry = key.sign(clock::now(), body)?;
    let (recent, public) = (key.to_send(), key.public());
    let all = key.all()?;
    // The entry is recorded: the key is free for other commands while we
    // talk to the node.
    drop(key);
    let mut outcome = submit(&api, &recent, &entry)?;
    if outcome.starts_with("pending") {
        // The node lacks an earlier entry of this key: send them all.
        for chunk in all.chunks(buildmesh_http::SUBMIT_ENTRIES_MAX) {
            outcome = submit(&api, chunk, &entry).unwrap_or(outcome);
        }
    }
    if outcome.starts_with("pending") {
        bail!(
            "the node is still missing earlier entries of this key ({outcome}); they are recorded in the key's .chain file and are sent again with your next command"
        );
    }
    Ok((entry, public))
}

/// Sends `wires` to the node; returns what became of `entry` (an error if
/// the node refused it or holds a conflicting entry of this key).
pub fn submit(api: &NodeApi, wires: &[Vec<u8>], entry: &Entry) -> Result<String> {
    let hexes: Vec<String> = wires.iter().map(hex::encode).collect();
    let (code, reply) = api.post("/api/v1/entries", &serde_json::json!({ "entries": hexes }))?;
    if code != 200 {
        bail!(
            "{} (the entry is recorded and will be sent again with your next command)",
            error_text(code, &reply)
        );
    }
    let id = entry.id().to_string();
    let outcome = reply["results"]
        .as_array()
        .and_then(|results| {
            results
                .iter()
                .find(|r| r["id"].as_str() == Some(id.as_str()))
        })
        .and_then(|r| r["outcome"].as_str())
        .unwrap_or("pending: not among the node's answers");
    if outcome.starts_with("invalid") || outcome.starts_with("refused") {
        bail!("the node did not take the entry: {outcome}");
    }
    if outcome.starts_with("fork") {
        bail!(
            "the mesh already holds another entry at this key's sequence number {}: the key was \
             used elsewhere or its .chain file is out of date, and its entries no longer count; \
             declare the project again with a new key",
            entry.seq()
        );
    }
    Ok(outcome.to_owned())
}

/// The node the maintainer's entries go to.
fn node_api(signer: &SignerArgs) -> Result<NodeApi> {
    let data_dir = DataDir::for_command(signer.data_dir.data_dir.clone());
    NodeApi::locate(signer.node.as_deref(), &data_dir)
}

fn key_path(signer: &SignerArgs) -> PathBuf {
    signer
        .key
        .clone()
        .unwrap_or_else(|| DataDir::for_command(signer.data_dir.data_dir.clone()).maintainer_key())
}

fn parse_keys(texts: &[String], flag: &str) -> Result<Vec<PublicKey>> {
    texts.iter().map(|t| parse_key(t, flag)).collect()
}

fn parse_key(text: &str, what: &str) -> Result<PublicKey> {
    text.parse()
        .with_context(|| format!("{what} {text}: a key is 64 hex digits, as `buildmesh id` prints"))
}

fn parse_commit(text: &str) -> Result<CommitId> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| CommitId::from_bytes(&bytes))
        .with_context(|| format!("{text}: a commit id is 40 (or 64) hex digits"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Issue 16, item 3: a maintainer command takes what `status` prints.
    #[test]
    fn a_project_is_named_by_name_or_a_unique_start_of_its_id() {
        let id = |hex: &str| hex.repeat(64 / hex.len()).parse::<ProjectId>().unwrap();
        let (a, b) = (id("ab12"), id("ab34"));
        let named = id("cafe");
        let mine = [a, b];
        assert_eq!(pick(&mine, named, "ab12ab").unwrap(), a);
        assert_eq!(pick(&mine, named, "AB34").unwrap(), b);
        let both = pick(&mine, named, "ab").unwrap_err().to_string();
        assert!(both.contains("2 of your projects"), "{both}");
        assert_eq!(pick(&mine, named, "beef").unwrap(), named, "a name");
        assert_eq!(
            pick(&[a, named], named, "ab12").unwrap(),
            named,
            "a name first"
        );
    }
}
