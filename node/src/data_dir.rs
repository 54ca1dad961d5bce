//! Where a node keeps its files.
//!
//! ```text
//! DATA_DIR/key      the node's secret key (mode 600)
//! DATA_DIR/operator.token  the operator token, new at each start (mode 600)
//! DATA_DIR/http.url  where the running node serves HTTP, for the commands
//! DATA_DIR/store/   the sled database of log entries
//! DATA_DIR/blobs/   content-addressed blobs (build logs), named by hash
//! DATA_DIR/maintainer.key (+ .chain)  a maintainer's key, if used from here
//! DATA_DIR/mirrors/ bare git mirrors of the repositories built
//! DATA_DIR/work/    work dirs of builds under way (a crash's leftovers go at start)
//! DATA_DIR/cache/   one cache dir per project, kept between its builds
//! ```

use std::path::{Path, PathBuf};

/// Where `buildmesh up` keeps a checkout's node, under its root.
pub const UP_DIR: [&str; 2] = [".git", "buildmesh"];

/// A node's data directory.
#[derive(Debug, Clone)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// The directory given, or the default: `$XDG_DATA_HOME/buildmesh`,
    /// else `$HOME/.local/share/buildmesh`, else `./buildmesh-data`.
    pub fn resolve(given: Option<PathBuf>) -> DataDir {
        DataDir(given.unwrap_or_else(default_root))
    }

    /// For a command a person runs (`force`, `status`, ...): the directory
    /// given, else that of the `buildmesh up` checkout the command runs
    /// in (so its keys and node are found with no option), else the
    /// default.
    ///
    /// The `up` checkout's directory is named on standard error (once): a
    /// maintainer with a key of their own must not sign with `up`'s
    /// without knowing.
    pub fn for_command(given: Option<PathBuf>) -> DataDir {
        static SAID: std::sync::Once = std::sync::Once::new();
        if let Some(given) = given {
            return DataDir(given);
        }
        match std::env::current_dir()
            .ok()
            .and_then(|d| DataDir::of_up(&d))
        {
            Some(up) => {
                SAID.call_once(|| {
                    eprintln!(
                        "(using the keys and node of `buildmesh up` in {}; --data-dir, --key or \
                         --node pick others)",
                        up.0.display()
                    );
                });
                up
            }
            None => DataDir(default_root()),
        }
    }

    /// The data dir of the `buildmesh up` checkout `dir` is in, if one
    /// there has run: the nearest `.git/buildmesh` holding a node key.
    pub fn of_up(dir: &Path) -> Option<DataDir> {
        dir.ancestors()
            .map(|a| a.join(UP_DIR[0]).join(UP_DIR[1]))
            .find(|d| d.join("key").is_file())
            .map(DataDir)
    }

    /// Where the running node serves HTTP (`http://ADDR`), written at
    /// each start; what the commands ask when given no `--node`.
    pub fn http_url(&self) -> PathBuf {
        self.0.join("http.url")
    }

    /// The node's key file.
    pub fn key_file(&self) -> PathBuf {
        self.0.join("key")
    }

    /// The operator token: what bans and dashboard force builds need.
    pub fn operator_token(&self) -> PathBuf {
        self.0.join("operator.token")
    }

    /// Content-addressed blobs (build logs), one file per hash.
    pub fn blobs(&self) -> PathBuf {
        self.0.join("blobs")
    }

    /// The maintainer key the maintainer commands use by default.
    pub fn maintainer_key(&self) -> PathBuf {
        self.0.join("maintainer.key")
    }

    /// Bare mirrors of the repositories this node builds or watches.
    pub fn mirrors(&self) -> PathBuf {
        self.0.join("mirrors")
    }

    /// Work dirs of builds under way.
    pub fn work(&self) -> PathBuf {
        self.0.join("work")
    }

    /// Per-project caches (`BUILDMESH_CACHE` in a step).
    pub fn caches(&self) -> PathBuf {
        self.0.join("cache")
    }

    /// The directory itself.
    pub fn root(&self) -> &std::path::Path {
        &self.0
    }

    /// The entry store.
    pub fn store(&self) -> PathBuf {
        self.0.join("store")
    }
}

fn default_root() -> PathBuf {
    let xdg = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let home = || {
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".local/share"))
    };
    xdg.or_else(home)
        .map(|base| base.join("buildmesh"))
        .unwrap_or_else(|| PathBuf::from("buildmesh-data"))
}
