//! Which project a person means: by name, by id, or by the start of its id
//! (as lists print it), the way `buildmesh status --project` and badge URLs
//! name one. One rule for both, so a name that works in one works in the
//! other.
//!
//! A project id derives from its owner and name, and anyone may declare a
//! project, so a name alone can stop being unique at any time: a
//! stranger's project of the same name makes it ambiguous. Ambiguity is
//! never settled by a guess; the caller is told the candidates, and an
//! owner key (or its start) picks among them. A full owner key with the
//! name cannot be taken by anyone else.

use buildmesh_protocol::{ProjectId, PublicKey};

/// A project a selector may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named<'a> {
    /// Its id.
    pub id: ProjectId,
    /// Its declared name.
    pub name: &'a str,
    /// Its owner (maintainer) key.
    pub owner: PublicKey,
}

/// Why no one project was picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSelected<'a> {
    /// Nothing matches.
    Unknown,
    /// Several match, each given.
    Ambiguous(Vec<Named<'a>>),
}

/// The project of `known` that `selector` names, among those whose owner
/// key starts with `owner` (hex, any case; `None`: any owner).
///
/// A full id (any case) of a known project picks it, whatever names
/// others chose: an id cannot be taken, and a stranger's project named
/// like it must not break a badge that gives it. Otherwise `selector`
/// matches the projects named exactly it and, if it is hex, those whose
/// id starts with it: a stranger's project named like the start of mine
/// makes it ambiguous, never silently theirs. An empty selector or owner,
/// or an owner that is not hex, matches nothing.
pub fn select_project<'a>(
    known: &[Named<'a>],
    selector: &str,
    owner: Option<&str>,
) -> Result<Named<'a>, NotSelected<'a>> {
    let is_hex = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit());
    if selector.is_empty() || owner.is_some_and(|o| !is_hex(o)) {
        return Err(NotSelected::Unknown);
    }
    let owner = owner.map(str::to_ascii_lowercase);
    let owned = |p: &&Named<'a>| {
        owner
            .as_ref()
            .is_none_or(|o| p.owner.to_string().starts_with(o))
    };
    if let Ok(id) = selector.parse::<ProjectId>()
        && let Some(project) = known.iter().filter(owned).find(|p| p.id == id)
    {
        return Ok(*project);
    }
    let lower = selector.to_ascii_lowercase();
    let hex = is_hex(selector);
    let matching: Vec<Named<'a>> = known
        .iter()
        .filter(owned)
        .filter(|p| p.name == selector || (hex && p.id.to_string().starts_with(&lower)))
        .copied()
        .collect();
    match matching[..] {
        [one] => Ok(one),
        [] => Err(NotSelected::Unknown),
        _ => Err(NotSelected::Ambiguous(matching)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex: &str) -> [u8; 32] {
        let mut bytes = [0; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let digits = hex.get(2 * i..2 * i + 2).unwrap_or("00");
            *byte = u8::from_str_radix(digits, 16).unwrap_or(0);
        }
        bytes
    }

    /// Two projects named `hello` by different owners, `other`, whose id
    /// shares `e407` with the first, and `cafe`, the start of the second
    /// `hello`'s id.
    fn known() -> Vec<Named<'static>> {
        vec![
            Named {
                id: ProjectId(key("e4079666f42c")),
                name: "hello",
                owner: PublicKey(key("aa11")),
            },
            Named {
                id: ProjectId(key("e4071111aaaa")),
                name: "other",
                owner: PublicKey(key("aa11")),
            },
            Named {
                id: ProjectId(key("cafe01")),
                name: "hello",
                owner: PublicKey(key("bb22")),
            },
            Named {
                id: ProjectId(key("77")),
                name: "cafe",
                owner: PublicKey(key("cc33")),
            },
        ]
    }

    fn picked(selector: &str, owner: Option<&str>) -> Result<ProjectId, usize> {
        match select_project(&known(), selector, owner) {
            Ok(p) => Ok(p.id),
            Err(NotSelected::Unknown) => Err(0),
            Err(NotSelected::Ambiguous(all)) => Err(all.len()),
        }
    }

    #[test]
    fn a_unique_name_a_full_id_or_a_unique_id_start_picks_one() {
        let other = ProjectId(key("e4071111aaaa"));
        assert_eq!(picked("other", None), Ok(other));
        assert_eq!(picked(&other.to_string(), None), Ok(other));
        assert_eq!(
            picked(&other.to_string().to_ascii_uppercase(), None),
            Ok(other)
        );
        assert_eq!(picked("E4071", None), Ok(other));
        assert_eq!(picked("cafe0", None), Ok(ProjectId(key("cafe01"))));
    }

    #[test]
    fn a_shared_name_or_id_start_is_ambiguous_and_an_owner_settles_it() {
        assert_eq!(picked("hello", None), Err(2));
        assert_eq!(picked("e407", None), Err(2));
        let theirs = ProjectId(key("cafe01"));
        assert_eq!(picked("hello", Some("bb")), Ok(theirs));
        assert_eq!(picked("hello", Some("BB22")), Ok(theirs));
        let full = PublicKey(key("bb22")).to_string();
        assert_eq!(picked("hello", Some(&full)), Ok(theirs));
        assert_eq!(
            picked("hello", Some("aa")),
            Ok(ProjectId(key("e4079666f42c")))
        );
        assert_eq!(picked("e407", Some("aa11")), Err(2));
        // The candidates are named, so the caller can list them.
        match select_project(&known(), "hello", None) {
            Err(NotSelected::Ambiguous(all)) => {
                let owners: Vec<PublicKey> = all.iter().map(|p| p.owner).collect();
                assert_eq!(owners, [PublicKey(key("aa11")), PublicKey(key("bb22"))]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_name_like_an_id_start_is_ambiguous_and_nothing_else_matches() {
        // `cafe` is a name here and the start of another project's id:
        // neither wins; the owner settles it.
        assert_eq!(picked("cafe", None), Err(2));
        assert_eq!(picked("cafe", Some("cc")), Ok(ProjectId(key("77"))));
        assert_eq!(picked("cafe", Some("bb")), Ok(ProjectId(key("cafe01"))));
        assert_eq!(picked("nope", None), Err(0));
        assert_eq!(picked("", None), Err(0));
        assert_eq!(picked("hello", Some("")), Err(0));
        assert_eq!(picked("hello", Some("zz")), Err(0));
        assert_eq!(picked("hello", Some("dd")), Err(0));
        assert_eq!(picked("Hello", None), Err(0));
        assert_eq!(
            select_project(&[], "hello", None),
            Err(NotSelected::Unknown)
        );
    }

    /// A stranger's project named exactly like my id, or like the start
    /// of it `status` prints, does not take my badge or my `--project`.
    #[test]
    fn a_stranger_cannot_take_an_id_or_its_start_by_naming_a_project_after_it() {
        let mine = Named {
            id: ProjectId(key("e4079666f42c")),
            name: "hello",
            owner: PublicKey(key("aa11")),
        };
        let full = mine.id.to_string();
        let short = &full[..12];
        let copycat = |name| Named {
            id: ProjectId(key("99")),
            name,
            owner: PublicKey(key("ee55")),
        };
        let known = [mine, copycat(&full), copycat(short)];
        assert_eq!(select_project(&known, &full, None), Ok(mine));
        assert_eq!(
            select_project(&known, &full.to_ascii_uppercase(), None),
            Ok(mine)
        );
        match select_project(&known, short, None) {
            Err(NotSelected::Ambiguous(all)) => assert!(all.contains(&mine)),
            other => panic!("the start of my id is not theirs: {other:?}"),
        }
        assert_eq!(select_project(&known, short, Some("aa")), Ok(mine));
    }
}
