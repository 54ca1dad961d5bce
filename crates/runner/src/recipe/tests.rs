#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn error(text: &str) -> String {
    Recipe::parse(text.as_bytes()).unwrap_err().to_string()
}

#[test]
fn a_full_recipe_parses() {
    let recipe = Recipe::parse(
        br#"
        [[step]]
        name = "build"
        command = "cargo build"
        timeout_secs = 600
        env = { RUSTFLAGS = "-D warnings" }

        [[step]]
        name = "test"
        command = "cargo test"

        [metrics]
        tests_passed = { step = "test", regex = "(\\d+) passed" }
        coverage = { file = "coverage.txt" }

        [environment]
        tools = ["cc --version"]
        "#,
    )
    .unwrap();
    assert_eq!(recipe.steps.len(), 2);
    assert_eq!(recipe.steps[0].timeout, Duration::from_secs(600));
    assert_eq!(
        recipe.steps[1].timeout,
        Duration::from_secs(TIMEOUT_SECS_DEFAULT)
    );
    assert_eq!(recipe.steps[0].env["RUSTFLAGS"], "-D warnings");
    assert!(matches!(
        recipe.metrics["coverage"],
        MetricSource::File { .. }
    ));
    assert!(matches!(
        recipe.metrics["tests_passed"],
        MetricSource::Output { .. }
    ));
    assert_eq!(recipe.tools, ["cc --version"]);
    assert!(recipe.step("test").is_some());
}

#[test]
fn toml_errors_keep_line_and_column() {
    let e = error("[[step]]\nname = \"a\"\ncomand = \"x\"\n");
    assert!(e.contains("line 3"), "{e}");
    assert!(e.contains("comand"), "{e}");
    assert!(error("[[step]\n").contains("line 1"));
}

#[test]
fn steps_are_checked() {
    assert!(error("").contains("no steps"));
    let two = "[[step]]\nname = \"a\"\ncommand = \"x\"\n";
    assert!(error(&two.repeat(2)).contains("same name"));
    let e = error("[[step]]\nname = \"\"\ncommand = \"x\"\n");
    assert!(e.contains("step 1") && e.contains("name is empty"), "{e}");
    let e = error("[[step]]\nname = \"a\"\ncommand = \"x\"\ntimeout_secs = 0\n");
    assert!(e.contains("timeout_secs is 0"), "{e}");
    let e = error("[[step]]\nname = \"a\"\ncommand = \"x\"\ntimeout_secs = 86401\n");
    assert!(e.contains("between 1 and 86400"), "{e}");
    let e = error("[[step]]\nname = \"a\"\ncommand = \"  \"\n");
    assert!(e.contains("command is empty"), "{e}");
    let many = format!("[[step]]\nname = \"{}\"\ncommand = \"x\"\n", "n".repeat(65));
    assert!(error(&many).contains("limit is 64"));
}

#[test]
fn too_many_steps_or_bytes_are_refused() {
    let steps: String = (0..=STEPS_MAX)
        .map(|i| format!("[[step]]\nname = \"s{i}\"\ncommand = \"x\"\n"))
        .collect();
    assert!(error(&steps).contains("65 steps"));
    let big = format!("# {}\n", "x".repeat(RECIPE_BYTES_MAX));
    assert!(error(&big).contains("the limit is 65536"));
}

#[test]
fn metrics_are_checked() {
    let step = "[[step]]\nname = \"test\"\ncommand = \"x\"\n[metrics]\n";
    let e = error(&format!(
        "{step}m = {{ step = \"nope\", regex = \"(\\\\d+)\" }}\n"
    ));
    assert!(e.contains("metrics.m") && e.contains("\"nope\""), "{e}");
    let e = error(&format!(
        "{step}m = {{ step = \"test\", regex = \"\\\\d+\" }}\n"
    ));
    assert!(e.contains("no capture group"), "{e}");
    let e = error(&format!("{step}m = {{ step = \"test\", regex = \"(\" }}\n"));
    assert!(e.contains("does not compile"), "{e}");
    let e = error(&format!("{step}m = {{ file = \"../x\" }}\n"));
    assert!(e.contains("without '..'"), "{e}");
    let e = error(&format!("{step}m = {{ file = \"/etc/passwd\" }}\n"));
    assert!(e.contains("relative"), "{e}");
    let e = error(&format!("{step}m = {{ step = \"test\" }}\n"));
    assert!(e.contains("either"), "{e}");
    let e = error(&format!("{step}m = {{ file = \"a\", colour = 1 }}\n"));
    assert!(e.contains("colour"), "{e}");
}

#[test]
fn a_metric_says_which_matches_it_takes_first_by_default() {
    let step = "[[step]]\nname = \"test\"\ncommand = \"x\"\n[metrics]\n";
    let take_of = |line: &str| {
        let recipe = Recipe::parse(format!("{step}{line}\n").as_bytes()).unwrap();
        match &recipe.metrics["m"] {
            MetricSource::Output { take, .. } => *take,
            other => panic!("{other:?}"),
        }
    };
    // A recipe written before `take` existed means the first match.
    assert_eq!(
        take_of(r#"m = { step = "test", regex = '(\d+)' }"#),
        MetricTake::First
    );
    for (name, take) in [
        ("first", MetricTake::First),
        ("last", MetricTake::Last),
        ("sum", MetricTake::Sum),
        ("max", MetricTake::Max),
        ("min", MetricTake::Min),
    ] {
        let line = format!(r#"m = {{ step = "test", regex = '(\d+)', take = "{name}" }}"#);
        assert_eq!(take_of(&line), take);
    }
    let e = error(&format!(
        "{step}m = {{ step = \"test\", regex = '(\\d+)', take = \"all\" }}\n"
    ));
    assert!(
        e.starts_with("metrics.m: take = \"all\" is not one of")
            && e.contains(r#""first", "last", "sum", "max", "min""#),
        "{e}"
    );
    let e = error(&format!(
        "{step}m = {{ file = \"n.txt\", take = \"sum\" }}\n"
    ));
    assert!(
        e.contains("metrics.m: take applies to { step, regex }"),
        "{e}"
    );
    let e = error(&format!(
        "{step}m = {{ step = \"test\", regex = '(\\d+)', take = 1 }}\n"
    ));
    assert!(e.contains("take") && e.contains("string"), "{e}");
}

#[test]
fn env_and_tools_are_checked() {
    let e = error("[[step]]\nname = \"a\"\ncommand = \"x\"\nenv = { \"A=B\" = \"1\" }\n");
    assert!(e.contains("contains '='"), "{e}");
    let e = error("[[step]]\nname = \"a\"\ncommand = \"x\"\n[environment]\ntools = [\"\"]\n");
    assert!(e.contains("environment.tools[0]"), "{e}");
}

#[test]
fn inherited_variables_come_from_the_node_and_steps_win() {
    let recipe = Recipe::parse(
        b"[[step]]\nname = \"a\"\ncommand = \"x\"\nenv = { HOME = \"/mine\" }\n\
          [environment]\ninherit = [\"PATH\", \"HOME\", \"BUILDMESH_NO_SUCH_VARIABLE\"]\n",
    )
    .unwrap();
    let env = recipe.environment_of(&recipe.steps[0]);
    assert_eq!(env.get("PATH"), std::env::var("PATH").ok().as_ref());
    assert_eq!(env.get("HOME").map(String::as_str), Some("/mine"));
    assert!(!env.contains_key("BUILDMESH_NO_SUCH_VARIABLE"));
    let error = Recipe::parse(
        b"[[step]]\nname = \"a\"\ncommand = \"x\"\n[environment]\ninherit = [\"A=B\"]\n",
    )
    .unwrap_err();
    assert!(error.to_string().contains("inherit[0]"), "{error}");
}

#[test]
fn artifact_paths_parse_into_components() {
    let recipe = Recipe::parse(
        b"[[step]]\nname = \"a\"\ncommand = \"x\"\n\
          [artifacts]\npaths = [\"target/release/hello\", \"./dist/*.tar.gz\", \"a//b?\"]\n",
    )
    .unwrap();
    let [hello, dist, ab] = &recipe.artifacts[..] else {
        panic!("{:?}", recipe.artifacts)
    };
    assert_eq!(hello.components, ["target", "release", "hello"]);
    assert!(!hello.is_glob());
    assert_eq!(dist.text, "./dist/*.tar.gz");
    assert_eq!(dist.components, ["dist", "*.tar.gz"]);
    assert!(dist.is_glob());
    assert_eq!(ab.components, ["a", "b?"]);
    let none = Recipe::parse(b"[[step]]\nname = \"a\"\ncommand = \"x\"\n").unwrap();
    assert!(none.artifacts.is_empty());
}

#[test]
fn artifact_paths_are_checked() {
    let paths = |list: &str| {
        error(&format!(
            "[[step]]\nname = \"a\"\ncommand = \"x\"\n[artifacts]\npaths = [\"ok\", {list}]\n"
        ))
    };
    let e = paths("\"../secret\"");
    assert!(
        e.contains("artifacts.paths[1]") && e.contains("without '..'"),
        "{e}"
    );
    let e = paths("\"dist/../../x\"");
    assert!(
        e.contains("artifacts.paths[1]") && e.contains("'..'"),
        "{e}"
    );
    let e = paths("\"/etc/passwd\"");
    assert!(
        e.contains("artifacts.paths[1]") && e.contains("relative"),
        "{e}"
    );
    let e = paths("\" \"");
    assert!(e.contains("artifacts.paths[1]: path is empty"), "{e}");
    let e = paths("\"a\\u0000b\"");
    assert!(e.contains("artifacts.paths[1]") && e.contains("NUL"), "{e}");
    let e = paths("\"./.\"");
    assert!(e.contains("names no file"), "{e}");
    let e = paths("\"dist/**/*.tar.gz\"");
    assert!(e.contains("'**'"), "{e}");
    let many: Vec<String> = (0..=ARTIFACT_PATTERNS_MAX)
        .map(|i| format!("\"f{i}\""))
        .collect();
    let e = paths(&many.join(", "));
    assert!(e.contains("34 artifact paths; the limit is 32"), "{e}");
    let e = error("[[step]]\nname = \"a\"\ncommand = \"x\"\n[artifacts]\npath = [\"x\"]\n");
    assert!(e.contains("unknown field `path`"), "{e}");
}

const ONE_STEP: &str = "[[step]]\nname = \"test\"\ncommand = \"x\"\n";

#[test]
fn reports_parse_and_are_optional() {
    let recipe = Recipe::parse(
        format!(
            "{ONE_STEP}[reports]\njunit = [\"target/nextest/ci/junit.xml\", \"reports/*.xml\"]\n\
             coverage = \"coverage.xml\"\nmetrics = \"./metrics.txt\"\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let reports = recipe.reports.unwrap();
    let [nextest, globbed] = &reports.junit[..] else {
        panic!("{reports:?}")
    };
    assert_eq!(nextest.components, ["target", "nextest", "ci", "junit.xml"]);
    assert!(globbed.is_glob());
    assert_eq!(reports.coverage.unwrap().components, ["coverage.xml"]);
    assert_eq!(reports.metrics.unwrap().components, ["metrics.txt"]);
    let only = Recipe::parse(format!("{ONE_STEP}[reports]\nmetrics = \"m\"\n").as_bytes());
    let only = only.unwrap().reports.unwrap();
    assert!(only.junit.is_empty() && only.coverage.is_none());
    assert!(
        Recipe::parse(ONE_STEP.as_bytes())
            .unwrap()
            .reports
            .is_none()
    );
}

#[test]
fn reports_are_checked_and_errors_say_what_to_do() {
    let reports = |table: &str| error(&format!("{ONE_STEP}[reports]\n{table}\n"));
    let e = reports("");
    assert!(
        e.starts_with("[reports] names no file") && e.contains("junit = "),
        "{e}"
    );
    let e = reports("junit = [\"ok.xml\", \"../up.xml\"]");
    assert!(
        e.contains("reports.junit[1]") && e.contains("without '..'"),
        "{e}"
    );
    let e = reports("junit = [\"/etc/passwd\"]");
    assert!(
        e.contains("reports.junit[0]") && e.contains("relative"),
        "{e}"
    );
    let e = reports("coverage = \"cov/*.xml\"");
    assert!(
        e.contains("reports.coverage") && e.contains("name one file"),
        "{e}"
    );
    let e = reports("metrics = \"\"");
    assert!(e.contains("reports.metrics: path is empty"), "{e}");
    let e = reports(&format!(
        "metrics = \"{}\"",
        "m".repeat(ARTIFACT_PATTERN_BYTES_MAX + 1)
    ));
    assert!(
        e.contains("reports.metrics") && e.contains("the limit is 4096"),
        "{e}"
    );
    let many: Vec<String> = (0..=REPORT_PATTERNS_MAX)
        .map(|i| format!("\"r{i}.xml\""))
        .collect();
    let e = reports(&format!("junit = [{}]", many.join(", ")));
    assert!(
        e.contains("reports.junit: 17 patterns; the limit is 16"),
        "{e}"
    );
    let e = reports("junit = \"one.xml\"");
    assert!(e.contains("invalid type") && e.contains("line"), "{e}");
    let e = reports("lcov = \"x\"");
    assert!(e.contains("unknown field `lcov`"), "{e}");
}

#[test]
fn a_step_may_not_take_the_reports_steps_name_when_there_are_reports() {
    let named = "[[step]]\nname = \"build\"\ncommand = \"x\"\n\
                 [[step]]\nname = \"reports\"\ncommand = \"y\"\n";
    let e = error(&format!("{named}[reports]\nmetrics = \"m\"\n"));
    assert!(
        e.starts_with("step 2 (\"reports\"): the name \"reports\" is taken")
            && e.contains("rename"),
        "{e}"
    );
    assert!(
        Recipe::parse(named.as_bytes()).is_ok(),
        "free without [reports]"
    );
}
