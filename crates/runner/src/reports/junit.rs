//! JUnit XML, read with the `quick-junit` crate after [`super::xml`]'s
//! pass.
//!
//! quick-junit reads what nextest writes and refuses much that other
//! tools write: pytest's timestamps have no time zone, Maven's and Go's
//! converters write a bare `<testsuite>` root, some write `time` with a
//! thousands separator. None of that says anything about a test's verdict,
//! so quick-junit is handed a normal form of the file: the XML pass's
//! events, under a `<testsuites>` root, with only the attributes read
//! here (names, messages, types) and none of the declarations, comments
//! or processing instructions.

use super::tally::{Failing, Tally, Verdict};
use super::xml::{self, name_of};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus};
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, Event};

/// Most `<testcase>`s read from one file. The parsed report takes some
/// hundreds of bytes per case: this bounds what one file of tiny cases
/// (16 MiB of them would be some 400,000) costs the builder, far above
/// what a real suite writes to one file.
pub(crate) const TESTCASES_MAX: usize = 50_000;

/// The tests of one JUnit file, or why it cannot be read.
pub(crate) fn read(text: &str) -> Result<Tally, String> {
    let normal = normal_form(text)?;
    let report =
        Report::deserialize_from_str(&normal).map_err(|e| format!("not a JUnit report: {e}"))?;
    let mut tally = Tally::default();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            count(&mut tally, suite.name.as_str(), case);
        }
    }
    Ok(tally)
}

fn count(tally: &mut Tally, suite: &str, case: &TestCase) {
    let (verdict, message, description) = match &case.status {
        TestCaseStatus::Success { .. } => {
            tally.passed += 1;
            return;
        }
        TestCaseStatus::Skipped { .. } => {
            tally.skipped += 1;
            return;
        }
        TestCaseStatus::NonSuccess {
            kind,
            message,
            description,
            ..
        } => (*kind, message, description),
    };
    let verdict = match verdict {
        NonSuccessKind::Failure => {
            tally.failed += 1;
            Verdict::Failed
        }
        NonSuccessKind::Error => {
            tally.errored += 1;
            Verdict::Errored
        }
    };
    let text =
        |t: &Option<quick_junit::XmlString>| t.as_ref().map_or("", |s| s.as_str()).to_owned();
    let mut output = text(description);
    for (label, stream) in [("stdout", &case.system_out), ("stderr", &case.system_err)] {
        let stream = text(stream);
        if !stream.trim().is_empty() {
            output.push_str(&format!("\n--- {label} ---\n{stream}"));
        }
    }
    let mut failing = Failing::new(&full_name(case), verdict, &text(message), &output);
    failing.suite = crate::fit::truncate(suite, super::tally::DETAILS_TEXT_BYTES_MAX);
    tally.push(failing);
}

/// `classname::name`, as nextest and pytest fill them in
/// (`my-crate::tests::adds`, `tests.test_calc::test_sub`); the name alone
/// without a class.
fn full_name(case: &TestCase) -> String {
    match case.classname.as_ref().map(|c| c.as_str()) {
        Some(class) if !class.is_empty() => format!("{class}::{}", case.name.as_str()),
        _ => case.name.as_str().to_owned(),
    }
}

/// The attributes kept, by element: all that is read of them.
fn kept(element: &[u8], attribute: &[u8]) -> bool {
    match element {
        b"testsuites" | b"testsuite" => attribute == b"name",
        b"testcase" => matches!(attribute, b"name" | b"classname"),
        b"property" => matches!(attribute, b"name" | b"value"),
        _ => matches!(attribute, b"message" | b"type"),
    }
}

/// The file as quick-junit is handed it (see the module's doc).
fn normal_form(text: &str) -> Result<String, String> {
    let mut writer = Writer::new(Vec::with_capacity(text.len() + 32));
    // Whether the root is a bare <testsuite>, once it is seen.
    let mut bare = None;
    let mut cases = 0usize;
    xml::walk(text, &mut |_, event| {
        let out = match event {
            Event::Start(element) | Event::Empty(element) => {
                if element.name().as_ref() == b"testcase" {
                    cases += 1;
                    if cases > TESTCASES_MAX {
                        return Err(format!(
                            "more than {TESTCASES_MAX} test cases in one file; split the \
                             report (a file per test binary or package)"
                        ));
                    }
                }
                if bare.is_none() {
                    bare = Some(root(element)?);
                    if bare == Some(true) {
                        write(&mut writer, Event::Start(BytesStart::new("testsuites")))?;
                    }
                }
                let trimmed = trim(element);
                match event {
                    Event::Start(_) => Event::Start(trimmed),
                    _ => Event::Empty(trimmed),
                }
            }
            Event::End(_) | Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                event.borrow()
            }
            _ => return Ok(()),
        };
        write(&mut writer, out)
    })?;
    match bare {
        None => return Err("it holds no XML element".into()),
        Some(true) => write(&mut writer, Event::End(BytesEnd::new("testsuites")))?,
        Some(false) => {}
    }
    String::from_utf8(writer.into_inner()).map_err(|e| e.to_string())
}

/// Whether the root element is a bare `<testsuite>`; refused unless it is
/// that or `<testsuites>`.
fn root(element: &BytesStart<'_>) -> Result<bool, String> {
    match element.name().as_ref() {
        b"testsuites" => Ok(false),
        b"testsuite" => Ok(true),
        _ => Err(format!(
            "its root element is <{}>; a JUnit report's is <testsuites> or <testsuite>",
            name_of(element)
        )),
    }
}

/// `element` with only the attributes [`kept`] says; a suite without a
/// name gets an empty one, which quick-junit requires.
fn trim<'a>(element: &BytesStart<'a>) -> BytesStart<'a> {
    let name = element.name();
    let mut trimmed = BytesStart::new(String::from_utf8_lossy(name.as_ref()).into_owned());
    let mut named = false;
    // The XML pass checked every attribute already.
    for attribute in element.attributes().flatten() {
        if kept(name.as_ref(), attribute.key.as_ref()) {
            named |= attribute.key.as_ref() == b"name";
            trimmed.push_attribute(attribute);
        }
    }
    if !named && name.as_ref() == b"testsuite" {
        trimmed.push_attribute(("name", ""));
    }
    trimmed
}

fn write(writer: &mut Writer<Vec<u8>>, event: Event<'_>) -> Result<(), String> {
    writer.write_event(event).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_file_of_too_many_test_cases_is_refused_before_it_is_parsed() {
        let case = "<testcase name=\"t\"/>";
        let many = |n| format!("<testsuite name=\"s\">{}</testsuite>", case.repeat(n));
        assert_eq!(
            read(&many(TESTCASES_MAX)).unwrap().passed,
            TESTCASES_MAX as u64
        );
        let error = read(&many(TESTCASES_MAX + 1)).unwrap_err();
        assert!(error.contains("more than 50000 test cases"), "{error}");
    }

    /// Written by cargo-nextest 0.9.143 (`[profile.ci.junit]`) for a crate
    /// with two passing tests and two failing ones.
    const NEXTEST: &str = include_str!("samples/nextest-junit.xml");
    /// Written by pytest 7.2.1 (`--junitxml`): one test passed, one
    /// failed, one skipped, one fixture raised.
    const PYTEST: &str = include_str!("samples/pytest-junit.xml");

    #[test]
    fn nextests_report_names_failing_tests_by_binary_and_path() {
        let tally = read(NEXTEST).unwrap();
        assert_eq!(
            (tally.passed, tally.failed, tally.errored, tally.skipped),
            (2, 2, 0, 0)
        );
        let names: Vec<&str> = tally.failing.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["demo::tests::breaks", "demo::tests::breaks_too"]);
        let breaks = &tally.failing[0];
        assert_eq!(
            (breaks.suite.as_str(), breaks.verdict),
            ("demo", Verdict::Failed)
        );
        assert!(
            breaks.message.contains("panicked at src/lib.rs:12:44"),
            "{breaks:?}"
        );
        assert!(breaks.output.contains("one and one"), "{}", breaks.output);
        assert!(
            breaks
                .output
                .contains("--- stdout ---\nrunning 1 test\nsome output"),
            "{:?}",
            breaks.output
        );
    }

    #[test]
    fn pytests_report_with_a_zoneless_timestamp_is_read() {
        let tally = read(PYTEST).unwrap();
        assert_eq!(
            (tally.passed, tally.failed, tally.errored, tally.skipped),
            (1, 1, 1, 1)
        );
        let [sub, errors] = &tally.failing[..] else {
            panic!("{tally:?}")
        };
        assert_eq!(
            (sub.name.as_str(), sub.verdict),
            ("test_calc::test_sub", Verdict::Failed)
        );
        assert!(
            sub.message.starts_with("AssertionError: one minus one"),
            "{sub:?}"
        );
        assert!(sub.output.contains("test_calc.py:10: AssertionError"));
        assert_eq!(
            (errors.name.as_str(), errors.verdict),
            ("test_calc::test_errors", Verdict::Errored)
        );
        assert_eq!(errors.suite, "pytest");
    }

    #[test]
    fn a_bare_testsuite_root_is_read_and_other_roots_are_refused() {
        let bare = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- go-junit-report -->
<testsuite tests="3" failures="1" time="1,234.5" timestamp="yesterday">
  <testcase classname="example.com/calc" name="TestAdd" time="0.000"/>
  <testcase classname="example.com/calc" name="TestSub"><failure message="Failed">calc_test.go:12: got 0</failure></testcase>
  <testcase name="TestLater"><skipped/></testcase>
</testsuite>"#;
        let tally = read(bare).unwrap();
        assert_eq!((tally.passed, tally.failed, tally.skipped), (1, 1, 1));
        assert_eq!(tally.failing[0].name, "example.com/calc::TestSub");
        assert_eq!(tally.failing[0].output, "calc_test.go:12: got 0");
        let e = read("<?xml version=\"1.0\"?>\n<coverage line-rate=\"1\"/>").unwrap_err();
        assert!(e.contains("root element is <coverage>"), "{e}");
        assert!(
            read("<?xml version=\"1.0\"?>\n")
                .unwrap_err()
                .contains("no XML element")
        );
    }

    /// Behind the first pass, quick-junit itself expands no entity a
    /// file declares: it refuses the reference.
    #[test]
    fn quick_junit_alone_expands_no_declared_entity() {
        let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE t [<!ENTITY a \"aaaaaaaa\">\
                      <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">]>\n\
                      <testsuites><testsuite name=\"&c;\"><testcase name=\"t\">\
                      <failure>&c;</failure></testcase></testsuite></testsuites>";
        let e = Report::deserialize_from_str(laughs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("testsuite"), "{e}");
        let text = "<testsuites><testsuite name=\"s\"><testcase name=\"t\">\
                    <failure>&c;</failure></testcase></testsuite></testsuites>";
        assert!(Report::deserialize_from_str(text).is_err());
    }

    #[test]
    fn hostile_and_broken_files_are_refused_with_where() {
        let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE t [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;\">]>\n\
                      <testsuites><testsuite name=\"&b;\"/></testsuites>";
        assert!(read(laughs).unwrap_err().contains("declares a DTD"));
        let cut = &NEXTEST[..NEXTEST.len() / 2];
        let e = read(cut).unwrap_err();
        assert!(
            e.starts_with("truncated") || e.starts_with("malformed XML at line"),
            "{e}"
        );
        let e = read("<testsuites><testsuite name=\"s\"><testcase/></testsuite></testsuites>")
            .unwrap_err();
        assert_eq!(
            e,
            "not a JUnit report: at testsuites/testsuite[0](\"s\")/testcase[0]/@name: \
             missing required attribute: name"
        );
    }
}
