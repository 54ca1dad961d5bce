//! One careful pass over a report's XML before anything reads it.
//!
//! Report files are written by whatever the build ran, so they are hostile
//! until shown otherwise. This pass refuses what no test or coverage
//! report needs and what has hurt XML readers before: a DTD that declares
//! anything (the billion laughs are entities declared there), entities
//! other than XML's five, nesting past [`DEPTH_MAX`]. It also says where a
//! file is malformed or was cut short, by line and column, which the
//! readers after it do not. Nothing here expands an entity, fetches an
//! external DTD or allocates more than the text's size.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Deepest nesting accepted: a JUnit report needs four levels, Cobertura
/// six.
pub(crate) const DEPTH_MAX: usize = 64;

/// Longest element or entity name a message shows, bytes.
const NAME_SHOWN_BYTES_MAX: usize = 64;

/// XML's predefined entities, the only ones accepted.
const PREDEFINED: [&str; 5] = ["lt", "gt", "amp", "apos", "quot"];

/// Where in the text an event starts, and the event.
pub(crate) type Visit<'a, 'b> = &'b mut dyn FnMut(usize, &Event<'a>) -> Result<(), String>;

/// Reads every event of `text`, handing each (with its byte offset) to
/// `visit`, or says why the text is refused. Comments, processing
/// instructions and the XML declaration are passed on too; an external
/// `<!DOCTYPE x SYSTEM "...">` is passed on and never fetched.
pub(crate) fn walk<'a>(text: &'a str, visit: Visit<'a, '_>) -> Result<(), String> {
    let mut reader = Reader::from_str(text);
    let mut open: Vec<String> = Vec::new();
    loop {
        let at = offset(reader.buffer_position());
        let event = reader.read_event().map_err(|e| {
            format!(
                "malformed XML at {}: {e}",
                place(text, offset(reader.error_position()))
            )
        })?;
        let here = || place(text, at);
        match &event {
            Event::Eof => break,
            Event::DocType(doctype) if doctype.contains(&b'[') => {
                return Err(format!(
                    "its <!DOCTYPE> at {} declares a DTD (entities, perhaps a billion laughs); \
                     reports never need one and buildmesh expands no entity",
                    here()
                ));
            }
            Event::GeneralRef(reference) if !reference.is_char_ref() => {
                let name = String::from_utf8_lossy(reference);
                if !PREDEFINED.contains(&name.as_ref()) {
                    return Err(unknown_entity(&name, &here()));
                }
            }
            Event::Start(element) => {
                attributes(element, &here)?;
                if open.len() == DEPTH_MAX {
                    return Err(format!(
                        "its elements nest more than {DEPTH_MAX} deep at {}",
                        here()
                    ));
                }
                open.push(name_of(element));
            }
            Event::Empty(element) => attributes(element, &here)?,
            Event::End(_) => {
                open.pop();
            }
            _ => {}
        }
        visit(at, &event)?;
    }
    match open.last() {
        Some(name) => Err(format!(
            "truncated: the file ends inside <{name}> (at {})",
            place(text, text.len())
        )),
        None => Ok(()),
    }
}

/// Checks an element's attributes: well formed, no entity but XML's own.
fn attributes(element: &BytesStart<'_>, here: &dyn Fn() -> String) -> Result<(), String> {
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|e| format!("malformed XML at {}: {e}", here()))?;
        if let Some(name) = entity_in(&attribute.value) {
            return Err(unknown_entity(&name, &here()));
        }
    }
    Ok(())
}

/// The first `&name;` in a raw attribute value that is neither a
/// character reference nor one of XML's five entities.
fn entity_in(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut rest = text.as_ref();
    while let Some(start) = rest.find('&') {
        rest = &rest[start + 1..];
        let name = rest.split(';').next().unwrap_or(rest);
        if !name.starts_with('#') && !PREDEFINED.contains(&name) {
            return Some(name.to_owned());
        }
    }
    None
}

fn unknown_entity(name: &str, here: &str) -> String {
    format!(
        "it uses the entity &{}; at {here}; only XML's own (&lt; &gt; &amp; &apos; &quot;) \
         and character references are read, and buildmesh expands no other",
        crate::fit::truncate(name, NAME_SHOWN_BYTES_MAX)
    )
}

/// An element's name, as messages show it.
pub(crate) fn name_of(element: &BytesStart<'_>) -> String {
    let name = String::from_utf8_lossy(element.name().as_ref()).into_owned();
    crate::fit::truncate(&name, NAME_SHOWN_BYTES_MAX)
}

/// A reader's position as an index into the text it reads.
fn offset(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

/// `line L, column C` (both from 1, columns in characters) of byte
/// `offset` of `text`.
pub(crate) fn place(text: &str, offset: usize) -> String {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    format!("line {line}, column {column}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn check(text: &str) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        walk(text, &mut |_, event| {
            if let Event::Start(e) | Event::Empty(e) = event {
                names.push(name_of(e));
            }
            Ok(())
        })?;
        Ok(names)
    }

    const LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol9 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<testsuites><testsuite name="&lol9;"><testcase name="x">&lol9;</testcase></testsuite></testsuites>
"#;

    #[test]
    fn a_dtd_that_declares_anything_is_refused_before_any_entity() {
        let e = check(LAUGHS).unwrap_err();
        assert!(
            e.contains("declares a DTD") && e.contains("line 2, column 1"),
            "{e}"
        );
    }

    #[test]
    fn entities_never_declared_are_refused_in_text_and_attributes() {
        let e = check("<a>x &lol9; y</a>").unwrap_err();
        assert!(e.contains("&lol9;") && e.contains("line 1"), "{e}");
        let e = check("<a>\n<b name=\"&lol9;\"/></a>").unwrap_err();
        assert!(
            e.contains("&lol9;") && e.contains("line 2, column 1"),
            "{e}"
        );
        let e = check("<a b=\"&#x41;&amp;&xxe;\"/>").unwrap_err();
        assert!(e.contains("&xxe;"), "{e}");
        assert!(check("<a b=\"&#x41;&amp;&lt;\">&quot;&#65;&gt;</a>").is_ok());
    }

    #[test]
    fn an_external_dtd_is_neither_refused_nor_fetched() {
        let cobertura = "<?xml version=\"1.0\"?>\n<!DOCTYPE coverage SYSTEM \
                         \"http://cobertura.sourceforge.net/xml/coverage-04.dtd\">\n\
                         <coverage line-rate=\"0.5\"/>\n";
        assert_eq!(check(cobertura).unwrap(), ["coverage"]);
    }

    #[test]
    fn truncated_and_malformed_files_say_where() {
        let e =
            check("<testsuites>\n  <testsuite name=\"a\">\n    <testcase name=\"b\">").unwrap_err();
        assert!(
            e.starts_with("truncated: the file ends inside <testcase> (at line 3"),
            "{e}"
        );
        let e = check("<testsuites>\n  <testsuite name=\"a").unwrap_err();
        assert!(e.starts_with("malformed XML at line 2, column 3"), "{e}");
        let e = check("<a>\n<b></c></a>").unwrap_err();
        assert!(e.starts_with("malformed XML at line 2"), "{e}");
        let e = check("<a x=\"1\" x=\"2\"/>").unwrap_err();
        assert!(e.starts_with("malformed XML at line 1"), "{e}");
        let e = check("<a>AT&T</a>").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "<a>".repeat(DEPTH_MAX + 1);
        let e = check(&deep).unwrap_err();
        assert!(e.contains(&format!("more than {DEPTH_MAX} deep")), "{e}");
        let fine = format!("{}{}", "<a>".repeat(DEPTH_MAX), "</a>".repeat(DEPTH_MAX));
        assert_eq!(check(&fine).unwrap().len(), DEPTH_MAX);
    }

    #[test]
    fn places_count_lines_and_characters() {
        assert_eq!(place("ab\nçd", 5), "line 2, column 2");
        assert_eq!(
            place("ab\nçd", 4),
            "line 2, column 1",
            "inside ç: its start"
        );
        assert_eq!(place("", 9), "line 1, column 1");
    }
}
