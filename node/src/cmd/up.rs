//! `buildmesh up`: build the checkout you are in, with no other setup.
//!
//! One node on this machine, listening on loopback only, with its keys and
//! store in `.git/buildmesh`. A local maintainer key declares the project
//! (this checkout, its branch, this platform) with the node as its only
//! announcer and builder; the node then watches the checkout, announces
//! each new commit and builds it.

use super::node::{load_or_create_key, run_with};
use crate::cli::UpArgs;
use crate::client::NodeApi;
use crate::clock;
use crate::config::{DEFAULT_HTTP, NodeConfig, Schedule, detected_platform};
use crate::data_dir::DataDir;
use crate::maintainer::MaintainerKey;
use anyhow::{Context, Result, bail};
use buildmesh_core::schedule::Cron;
use buildmesh_core::view::Acceptance;
use buildmesh_protocol::{Body, BuilderPolicy, CommitId, ProjectDeclaration, ProjectId, PublicKey};
use buildmesh_runner::{Mirror, RECIPE_BYTES_MAX, RECIPE_PATH, Recipe, SandboxConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Runs `buildmesh up`.
pub fn run(args: UpArgs) -> Result<ExitCode> {
    let dir = args.repo_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let head = buildmesh_runner::describe_local(&dir, "HEAD")
        .context("buildmesh up builds a git checkout: run it inside one, or give --repo-dir")?;
    let root = head.root.canonicalize().unwrap_or(head.root);
    let branch = args
        .branch
        .clone()
        .or(head.branch.clone())
        .context("HEAD is not on a branch: check one out, or give --branch")?;
    let http = args.http.clone().unwrap_or_else(|| DEFAULT_HTTP.to_owned());
    // Before anything is created or printed: a second `up` whose port is
    // taken leaves no data dir behind and says only why it stopped.
    std::net::TcpListener::bind(&http).with_context(|| {
        format!(
            "cannot listen on {http} (is another buildmesh up running? pick another with --http)"
        )
    })?;
    let built = if Some(&branch) == head.branch.as_ref() {
        head.info.commit.clone()
    } else {
        buildmesh_runner::describe_local(&dir, &branch)
            .with_context(|| format!("no branch {branch} in this checkout"))?
            .info
            .commit
    };
    check_recipe(&root, &built, &branch)?;
    let data_dir = DataDir::resolve(Some(
        args.data_dir
            .clone()
            .unwrap_or_else(|| root.join(".git").join("buildmesh")),
    ));
    std::fs::create_dir_all(data_dir.root())
        .with_context(|| format!("cannot create {}", data_dir.root().display()))?;
    let node_key = load_or_create_key(&data_dir.key_file())?;
    // A second `up` in this checkout on another port would fail later on
    // the store's lock, after printing as if it started.
    if data_dir.http_url().exists()
        && let Ok(running) = NodeApi::locate(None, &data_dir)
    {
        bail!(
            "buildmesh up already runs for this checkout, at {} (stop it first, or use that one)",
            running.url()
        );
    }
    let node = PublicKey::from(node_key.verifying_key());
    load_or_create_key(&data_dir.maintainer_key())?;

    let platform = detected_platform();
    let declaration = ProjectDeclaration {
        name: project_name(&root),
        repository: root.display().to_string(),
        branches: vec![branch.clone()],
        platforms: vec![platform.clone()],
        announcers: vec![node],
        builders: BuilderPolicy::Only(vec![node]),
        builds_per_cell: 1,
    };
    let schedules = match &args.schedule {
        Some(text) => vec![Schedule {
            project: declaration.name.clone(),
            branch: branch.clone(),
            cron: Cron::parse(text)?,
            cron_text: text.clone(),
        }],
        None => Vec::new(),
    };
    let maintainer_path = data_dir.maintainer_key();
    let mut maintainer = MaintainerKey::open(&maintainer_path)?;
    if maintainer.recent_declaration(&declaration.name) != Some(&declaration) {
        maintainer.sign(clock::now(), Body::Project(declaration.clone()))?;
    }
    let project = ProjectId::derive(&maintainer.public(), &declaration.name);
    let seed = maintainer.to_send();
    drop(maintainer);

    println!(
        "buildmesh up: building {} (branch {branch}) for {platform}",
        root.display()
    );
    println!("project {} {project}", declaration.name);
    let sandbox = SandboxConfig {
        hidden: vec![std::path::absolute(data_dir.root())?],
        ..SandboxConfig::default()
    };
    let config = NodeConfig {
        data_dir,
        listen: vec!["/ip4/127.0.0.1/tcp/0".to_owned()],
        bootstrap: Vec::new(),
        http,
        http_hosts: Vec::new(),
        platforms: vec![platform],
        mdns: false,
        sync_interval: Duration::from_secs(30),
        poll_interval: Duration::from_secs(args.poll_interval_secs.max(1)),
        builds_max: 1,
        lease: Duration::from_secs(30),
        bid_window: Duration::from_millis(150),
        allow_local_repositories: true,
        report: true,
        webhook_secret: None,
        maintainer_key: Some(maintainer_path),
        schedules,
        acceptance: Acceptance::only(project),
        unsandboxed: false,
        sandbox,
        public_url: None,
        notify: Vec::new(),
        statuses: Vec::new(),
    };
    run_with(config, seed)
}

/// A first recipe, shown when a checkout has none.
const RECIPE_EXAMPLE: &str = "\
[[step]]
name = \"test\"
command = \"make check\"   # or: cargo test, pytest, npm test
timeout_secs = 1800
";

/// Stops `up` at start if the commit checked out has no recipe it can run:
/// every build of it would end in the same error, said only after a
/// minute of announcing, claiming and cloning.
fn check_recipe(root: &Path, commit: &CommitId, branch: &str) -> Result<()> {
    let repo = Mirror::open_local(root)?;
    let short = format!("{} (the head of {branch})", commit.short());
    match repo.read_file_at(commit, RECIPE_PATH, RECIPE_BYTES_MAX)? {
        Some(bytes) => Recipe::parse(&bytes).map(drop).with_context(|| {
            format!(
                "{RECIPE_PATH} in commit {short} is not a recipe buildmesh can run: fix \
                 it (docs/recipe.md), commit, and run buildmesh up again"
            )
        }),
        None if root.join(RECIPE_PATH).is_file() => bail!(
            "{RECIPE_PATH} is in the working tree but not in commit {short}, and \
             buildmesh builds commits: commit it (git add {RECIPE_PATH} && git commit) and run \
             buildmesh up again"
        ),
        None => bail!(
            "no {RECIPE_PATH} in commit {short}: it tells buildmesh how to build and test \
             this project. Write one at the top of the checkout, commit it, and run buildmesh up \
             again; for example:\n\n{RECIPE_EXAMPLE}\nEach step is a shell command run in a fresh \
             checkout of the commit; docs/recipe.md in buildmesh's source has every option."
        ),
    }
}

/// The checkout's directory name, cut to a project name's limits.
fn project_name(root: &Path) -> String {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "project".to_owned());
    name.chars().take(64).collect()
}
