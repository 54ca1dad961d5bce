//! The one-component glob of `[artifacts] paths`: `*` and `?` only.

/// Whether the file name `name` matches the component pattern `pattern`:
/// `*` stands for any run of characters (also none), `?` for exactly one,
/// every other character for itself. As in a shell, a name that starts
/// with `.` is matched only by a pattern that starts with a literal `.`.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and the first
    // name position that `*` has not yet swallowed.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry.
                Some((resume, swallowed)) => {
                    star = Some((resume, swallowed + 1));
                    p = resume;
                    n = swallowed + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literal_names_match_only_themselves() {
        assert!(matches("hello", "hello"));
        assert!(!matches("hello", "hell"));
        assert!(!matches("hell", "hello"));
        assert!(matches("[a]", "[a]"), "brackets are not special");
        assert!(!matches("[a]", "a"));
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("*", "anything"));
        assert!(matches("*.tar.gz", "hello-1.0.tar.gz"));
        assert!(
            !matches("*.tar.gz", ".tar.gz"),
            "a leading dot is not matched"
        );
        assert!(matches("*.tar.gz", "x.tar.gz"));
        assert!(!matches("*.tar.gz", "x.tar.gz.sig"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "aXXbYYbZc"));
        assert!(!matches("a*b*c", "aXXbYYbZ"));
        assert!(matches("h?llo", "hello"));
        assert!(
            matches("h?llo", "héllo"),
            "? is one character, not one byte"
        );
        assert!(!matches("h?llo", "hllo"));
        assert!(matches("**", "x"));
        assert!(matches("x*", "x"));
        assert!(!matches("", "x"));
        assert!(matches("", ""));
    }

    #[test]
    fn a_leading_dot_must_be_written() {
        assert!(!matches("*", ".hidden"));
        assert!(!matches("?hidden", ".hidden"));
        assert!(matches(".*", ".hidden"));
        assert!(matches(".h*", ".hidden"));
        assert!(matches("*.*", "a.b"));
    }
}
