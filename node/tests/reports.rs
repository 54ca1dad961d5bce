//! Hostile report files on a real node (issue 17): a build whose steps
//! write a billion laughs, a 1 GB file, Latin-1 bytes and a FIFO where its
//! recipe names JUnit reports passes as its step did, its `reports` step
//! saying why each was refused, and the same node then reads the next
//! build's honest report.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;
use support::{Maintainer, Repo, builder, declare, result_of, step_logs, wait_cell};

const WAIT: Duration = Duration::from_secs(60);

const HOSTILE: &str = r#"[[step]]
name = "test"
command = '''
mkdir -p reports
printf '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n<testsuites><testsuite name="&lol2;"/></testsuites>\n' > reports/laughs.xml
truncate -s 1G reports/huge.xml
printf '<testsuites><testsuite name="caf\351"/></testsuites>\n' > reports/latin.xml
mkfifo reports/pipe.xml
echo built
'''

[reports]
junit = ["reports/*.xml"]
"#;

const HONEST: &str = r#"[[step]]
name = "test"
command = '''
mkdir -p reports
printf '<testsuites><testsuite name="unit"><testcase classname="calc" name="adds"/><testcase classname="calc" name="subtracts"><failure message="2 - 1 != 3">assert 1 == 3</failure></testcase></testsuite></testsuites>\n' > reports/junit.xml
'''

[reports]
junit = ["reports/*.xml"]
"#;

#[test]
fn hostile_reports_are_refused_and_the_node_reads_the_next_build() {
    let keys = Maintainer::new();
    let node = builder(vec![], &["linux"], &keys);
    let repo = Repo::new();
    let hostile = repo.commit_recipe(HOSTILE, "Write hostile reports");
    let project = declare(
        keys.path(),
        &node,
        "hello",
        &repo,
        &["linux"],
        &node,
        &[&node],
    );
    let cell = wait_cell(&node, &project, &hostile, "linux", WAIT, |c| {
        c["status"] == "passed"
    });
    let result = result_of(&node, &cell);
    assert_eq!(result["outcome"], "passed", "{result}");
    assert!(result["tests"].is_null(), "nothing was read: {result}");
    let logs = step_logs(&node, &result);
    let (_, step, log) = logs.iter().find(|(name, _, _)| name == "reports").unwrap();
    assert_eq!(step["code"], 1, "{step}");
    for refused in [
        "junit reports/laughs.xml refused: its <!DOCTYPE>",
        "junit reports/huge.xml refused: it is 1073741824 bytes",
        "junit reports/latin.xml refused: not UTF-8",
        "junit reports/pipe.xml refused",
    ] {
        assert!(log.contains(refused), "{refused:?} in:\n{log}");
    }

    let honest = repo.commit_recipe(HONEST, "Report honestly");
    let cell = wait_cell(&node, &project, &honest, "linux", WAIT, |c| {
        c["status"] == "passed"
    });
    let result = result_of(&node, &cell);
    assert_eq!(result["tests"]["passed"], 1, "{result}");
    assert_eq!(result["tests"]["failed"], 1);
    assert_eq!(
        result["tests"]["failing"],
        serde_json::json!(["calc::subtracts"])
    );
    assert_eq!(result["tests"]["source"], "junit");
}
