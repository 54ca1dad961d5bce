//! Opening what a build left in its work dir, as what it is.
//!
//! Files leave a build (artifacts, metric files) only through a descriptor
//! opened beneath the work dir's own descriptor, never by path. A path that
//! was checked and then opened can be swapped in between by a process the
//! build left behind; and a hard link is the file it links to, so
//! `ln /etc/passwd x` passes every check made on paths. So nothing here
//! follows a symbolic link, anywhere on the way, or goes up with `..`; and
//! the file itself must be a regular file with a single link, as `fstat`
//! of the open descriptor says, which is then the only thing read.
//!
//! On Linux the directories on the way are resolved by the kernel in one
//! `openat2` call (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`); where that is
//! missing (older kernels, other unixes, seccomp filters), by opening one
//! component at a time with `O_NOFOLLOW`. Either way the last component is
//! opened from its directory's descriptor with `O_NOFOLLOW | O_NONBLOCK`,
//! so a FIFO swapped in cannot make the node wait for a writer.

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path};

/// How directories on the way are opened: readable (to be listed), never
/// through a link, not inherited by a step started meanwhile.
const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// How the file itself is opened: `O_NONBLOCK` so that opening a FIFO does
/// not wait for a writer, `O_NOCTTY` so that a terminal does not become
/// the node's.
const FILE_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOCTTY);

/// A work dir, opened once; everything is opened beneath it.
#[derive(Debug)]
pub(crate) struct Inside {
    dir: OwnedFd,
    /// Whether to try `openat2` first; off only to test the walk.
    kernel_resolution: bool,
}

/// Why a path under the work dir was not opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// Nothing there, or a component on the way is not a directory.
    #[error("no such file")]
    Missing,
    /// The last component is a symbolic link.
    #[error("it is a symbolic link")]
    Symlink,
    /// A directory on the way is a symbolic link (or the path is one).
    #[error("its path goes through a symbolic link")]
    SymlinkOnPath,
    /// The path is absolute, goes up with `..`, or left the work dir.
    #[error("it leads outside the work dir")]
    Outside,
    /// It is there, but is not a regular file.
    #[error("it is {0}, not a regular file")]
    NotRegular(Kind),
    /// A regular file with more than one name: its other names may be
    /// anywhere on the file system.
    #[error("it has {0} hard links")]
    HardLinks(u64),
    /// Anything else (permissions, I/O).
    #[error("{0}")]
    Io(std::io::Error),
}

impl Refusal {
    /// Whether this says something about what the build did rather than
    /// what it failed to do: such a refusal is part of the signed result,
    /// not only a local warning.
    pub(crate) fn is_safety(&self) -> bool {
        match self {
            Refusal::Symlink
            | Refusal::SymlinkOnPath
            | Refusal::Outside
            | Refusal::NotRegular(_)
            | Refusal::HardLinks(_) => true,
            Refusal::Missing | Refusal::Io(_) => false,
        }
    }
}

/// What a path that is not a regular file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Directory,
    Fifo,
    Socket,
    Device,
    Other,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Directory => "a directory",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::Device => "a device",
            Kind::Other => "something else",
        })
    }
}

impl Inside {
    /// Opens the work dir itself, which must be a directory and not a link.
    pub(crate) fn open(work_dir: &Path) -> std::io::Result<Inside> {
        let dir = nix::fcntl::open(work_dir, DIR_FLAGS, Mode::empty())?;
        Ok(Inside {
            dir,
            kernel_resolution: true,
        })
    }

    /// Opens `relative` for reading, if it is a regular file with a single
    /// link, beneath the work dir, reached without any symbolic link.
    pub(crate) fn open_file(&self, relative: &Path) -> Result<File, Refusal> {
        let components = components(relative)?;
        let Some((name, parents)) = components.split_last() else {
            return Err(Refusal::NotRegular(Kind::Directory));
        };
        let parent = self.open_dir(parents)?;
        // A look before opening, so that a device or FIFO is in the usual
        // case not opened at all; the check that counts is on the descriptor.
        let stat = fstatat(&parent, *name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(missing_or_io)?;
        match kind_of_mode(stat.st_mode) {
            None => {}
            Some(None) => return Err(Refusal::Symlink),
            Some(Some(kind)) => return Err(Refusal::NotRegular(kind)),
        }
        let fd =
            openat(&parent, *name, FILE_FLAGS, Mode::empty()).map_err(|errno| match errno {
                Errno::ELOOP | Errno::EMLINK => Refusal::Symlink,
                Errno::ENXIO => Refusal::NotRegular(Kind::Socket),
                other => missing_or_io(other),
            })?;
        let file = File::from(fd);
        let metadata = file.metadata().map_err(Refusal::Io)?;
        let file_type = metadata.file_type();
        if !file_type.is_file() {
            return Err(Refusal::NotRegular(kind_of_type(&file_type)));
        }
        if metadata.nlink() != 1 {
            return Err(Refusal::HardLinks(metadata.nlink()));
        }
        Ok(file)
    }

    /// The names in directory `relative` (`.` and `..` left out), in no
    /// particular order, reached the same way as [`Inside::open_file`].
    pub(crate) fn list(&self, relative: &Path) -> Result<Vec<OsString>, Refusal> {
        let dir = self.open_dir(&components(relative)?)?;
        let mut names = Vec::new();
        for entry in Dir::from_fd(dir).map_err(errno_io)? {
            let entry = entry.map_err(errno_io)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_owned());
            }
        }
        Ok(names)
    }

    /// The directory reached by `components` from the work dir.
    fn open_dir(&self, components: &[&OsStr]) -> Result<OwnedFd, Refusal> {
        if components.is_empty() {
            return openat(&self.dir, ".", DIR_FLAGS, Mode::empty()).map_err(errno_io);
        }
        #[cfg(target_os = "linux")]
        if self.kernel_resolution {
            match open_dir_beneath(self.dir.as_fd(), components) {
                // Not there (before Linux 5.6), or filtered out by a sandbox.
                Err(Errno::ENOSYS | Errno::EPERM) => {}
                // A component is a file, or the last one a link (with
                // O_DIRECTORY that is ENOTDIR, not ELOOP): the walk,
                // just as safe, tells which.
                Err(Errno::ENOTDIR) => {}
                other => return other.map_err(dir_refusal),
            }
        }
        open_dir_walking(self.dir.as_fd(), components)
    }
}

/// The plain components of `relative`; `.` ones are dropped.
fn components(relative: &Path) -> Result<Vec<&OsStr>, Refusal> {
    relative
        .components()
        .filter(|component| *component != Component::CurDir)
        .map(|component| match component {
            Component::Normal(name) => Ok(name),
            _ => Err(Refusal::Outside),
        })
        .collect()
}

/// The kernel's resolution: no symbolic link, magic link or `..` may take
/// it anywhere, and it may not leave `dir`.
#[cfg(target_os = "linux")]
fn open_dir_beneath(dir: BorrowedFd<'_>, components: &[&OsStr]) -> Result<OwnedFd, Errno> {
    use nix::fcntl::{OpenHow, ResolveFlag, openat2};
    let path: std::path::PathBuf = components.iter().collect();
    let how = OpenHow::new().flags(DIR_FLAGS).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    );
    openat2(dir, &path, how)
}

/// Why `openat2` refused a directory.
#[cfg(target_os = "linux")]
fn dir_refusal(errno: Errno) -> Refusal {
    match errno {
        Errno::ELOOP => Refusal::SymlinkOnPath,
        Errno::EXDEV => Refusal::Outside,
        other => missing_or_io(other),
    }
}

/// The same resolution by hand: one component at a time, each opened from
/// the one before with `O_NOFOLLOW`. `components` are plain names (no
/// `..`, no `/`), so no step can leave the directory it starts from.
fn open_dir_walking(dir: BorrowedFd<'_>, components: &[&OsStr]) -> Result<OwnedFd, Refusal> {
    let mut current: Option<OwnedFd> = None;
    for name in components {
        let from = current.as_ref().map_or(dir, |fd| fd.as_fd());
        match openat(from, *name, DIR_FLAGS, Mode::empty()) {
            Ok(next) => current = Some(next),
            // A link opened with O_NOFOLLOW | O_DIRECTORY fails with ELOOP,
            // ENOTDIR or (FreeBSD) EMLINK: look at what is there.
            Err(Errno::ELOOP | Errno::ENOTDIR | Errno::EMLINK) => {
                let stat =
                    fstatat(from, *name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(missing_or_io)?;
                return Err(match kind_of_mode(stat.st_mode) {
                    Some(None) => Refusal::SymlinkOnPath,
                    _ => Refusal::Missing,
                });
            }
            Err(other) => return Err(missing_or_io(other)),
        }
    }
    match current {
        Some(fd) => Ok(fd),
        None => openat(dir, ".", DIR_FLAGS, Mode::empty()).map_err(errno_io),
    }
}

/// `None` for a regular file, `Some(None)` for a symbolic link, else what
/// it is.
fn kind_of_mode(mode: nix::libc::mode_t) -> Option<Option<Kind>> {
    let format = SFlag::from_bits_truncate(mode) & SFlag::S_IFMT;
    if format == SFlag::S_IFREG {
        return None;
    }
    Some(if format == SFlag::S_IFLNK {
        None
    } else if format == SFlag::S_IFDIR {
        Some(Kind::Directory)
    } else if format == SFlag::S_IFIFO {
        Some(Kind::Fifo)
    } else if format == SFlag::S_IFSOCK {
        Some(Kind::Socket)
    } else if format == SFlag::S_IFCHR || format == SFlag::S_IFBLK {
        Some(Kind::Device)
    } else {
        Some(Kind::Other)
    })
}

fn kind_of_type(file_type: &std::fs::FileType) -> Kind {
    if file_type.is_dir() {
        Kind::Directory
    } else if file_type.is_fifo() {
        Kind::Fifo
    } else if file_type.is_socket() {
        Kind::Socket
    } else if file_type.is_char_device() || file_type.is_block_device() {
        Kind::Device
    } else {
        Kind::Other
    }
}

/// A missing file or directory (`ENOTDIR`: a component on the way is a
/// file) is [`Refusal::Missing`]; anything else an I/O error.
fn missing_or_io(errno: Errno) -> Refusal {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => Refusal::Missing,
        other => errno_io(other),
    }
}

fn errno_io(errno: Errno) -> Refusal {
    Refusal::Io(std::io::Error::from(errno))
}

/// Most refusals a result's error lists by name; the rest are counted.
const REFUSALS_LISTED_MAX: usize = 8;
/// Longest name a refusal shows, bytes.
const REFUSED_NAME_BYTES_MAX: usize = 200;

/// Files refused for safety during one build. Not empty means the build
/// is an error that names them: the result of a build that tried to
/// publish what it must not says so where every node can see it.
#[derive(Debug, Default)]
pub(crate) struct Refused {
    listed: Vec<String>,
    count: usize,
}

impl Refused {
    /// Records that `what` (`artifact`, `metric x file`) named `name` was
    /// refused because `why`.
    pub(crate) fn push(&mut self, what: &str, name: &str, why: &Refusal) {
        self.count += 1;
        if self.listed.len() < REFUSALS_LISTED_MAX {
            let name = crate::fit::truncate(name, REFUSED_NAME_BYTES_MAX);
            self.listed.push(format!("{what} {name:?} refused: {why}"));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.listed.join("; "))?;
        let more = self.count - self.listed.len();
        if more > 0 {
            write!(f, "; and {more} more")?;
        }
        f.write_str(
            "; buildmesh publishes only regular files with a single link inside the work dir",
        )
    }
}

#[cfg(test)]
mod tests;
