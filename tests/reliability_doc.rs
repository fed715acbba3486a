//! docs/reliability.md and the tests agree: every test the bad-input table names exists, and
//! every test of tests/bad_input.rs has a row.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

const DOC: &str = include_str!("../docs/reliability.md");

/// Names of the `async fn` / `fn` tests in `src`, including the macro-generated rows
/// (`name: config, |s| edit, ...`).
fn tests_in(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut lines = src.lines().peekable();
    let mut in_rows = false;
    while let Some(l) = lines.next() {
        let t = l.trim();
        if t.starts_with("#[tokio::test") || t == "#[test]" {
            if let Some(next) = lines.peek() {
                let name = next
                    .trim()
                    .trim_start_matches("async ")
                    .trim_start_matches("fn ")
                    .split('(')
                    .next()
                    .unwrap_or("");
                if !name.starts_with('$') {
                    out.insert(name.to_string());
                }
            }
        }
        if t == "sample_rows! {" {
            in_rows = true;
            continue;
        }
        if in_rows {
            if t == "}" {
                in_rows = false;
            } else if let Some((name, _)) = t.split_once(':') {
                if !name.contains(' ') && !name.is_empty() {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

/// Test names in the table's last column: `name` or `tests/file.rs::name`.
fn table_tests() -> Vec<(Option<String>, String)> {
    DOC.lines()
        .filter(|l| l.starts_with("| ") && l.ends_with(" |"))
        .filter_map(|l| l.rsplit('|').nth(1))
        .filter_map(|c| c.trim().strip_prefix('`')?.strip_suffix('`'))
        .map(|c| match c.split_once("::") {
            Some((file, name)) => (Some(file.to_string()), name.to_string()),
            None => (None, c.to_string()),
        })
        .collect()
}

#[test]
fn bad_input_table_matches_the_tests() {
    let root = env!("CARGO_MANIFEST_DIR");
    let bad = tests_in(&std::fs::read_to_string(format!("{root}/tests/bad_input.rs")).unwrap());
    let rows = table_tests();
    assert!(rows.len() >= 25, "at least 25 rows: {}", rows.len());
    let mut named = BTreeSet::new();
    for (file, name) in &rows {
        let in_file = match file {
            None => bad.contains(name),
            Some(f) => {
                tests_in(&std::fs::read_to_string(format!("{root}/{f}")).unwrap()).contains(name)
            }
        };
        assert!(
            in_file,
            "docs/reliability.md names `{name}` ({file:?}), no such test"
        );
        if file.is_none() {
            named.insert(name.clone());
        }
    }
    let missing: Vec<_> = bad.difference(&named).collect();
    assert!(
        missing.is_empty(),
        "tests without a row in docs/reliability.md: {missing:?}"
    );
}
