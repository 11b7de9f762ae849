//! The shape the code keeps, checked rather than promised: the core crate cannot speak HTTP, and
//! what a client is told is written once, at the edge.

use std::{collections::BTreeSet, fs, path::Path, process::Command};

use bank_api::routes::{Optional, docs};
use serde_json::Value;

/// `cargo tree` of the core crate's normal dependencies names nothing of the web, metrics or
/// tracing export.
#[test]
fn the_core_crate_depends_on_nothing_of_the_web() {
    let tree = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            "bank-core",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let tree = String::from_utf8(tree.stdout).expect("UTF-8");
    assert!(tree.contains("sea-orm"), "the tree was read: {tree}");
    for web in [
        "actix",
        "utoipa",
        "prometheus",
        "opentelemetry",
        "hyper",
        "tonic",
    ] {
        let found: Vec<&str> = tree.lines().filter(|line| line.contains(web)).collect();
        assert!(found.is_empty(), "bank-core depends on {web}: {found:?}");
    }
}

/// Every `detail` and `msg` the document shows a client is one string literal in the code that
/// is not a test, in the web crate, and none in the core.
#[test]
fn each_client_facing_message_is_written_once() {
    let api = docs::document(
        Optional {
            metrics: true,
            diagnostics: true,
            profiling: true,
        },
        std::num::NonZeroU32::new(100),
    );
    let document = serde_json::to_value(&api).expect("the document is JSON");
    let mut words = BTreeSet::new();
    collect_words(&document["paths"], &mut words);
    assert!(
        words.len() >= 15,
        "the document's examples were read: {words:?}"
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let web = sources(&root.join("src"));
    let core = sources(&root.join("core/src"));
    for words in words {
        // A literal whole, or a long one's first line, as it is written (it goes on with `\`).
        let literal = if words.len() <= 80 {
            format!("\"{words}\"")
        } else {
            format!("\"{}", words.chars().take(40).collect::<String>())
        };
        let in_web = web.matches(&literal).count();
        assert_eq!(in_web, 1, "{words:?} is written {in_web} times in src/");
        assert!(
            !core.contains(&literal),
            "{words:?} is written in core/src/"
        );
    }
}

/// The `detail` (or each `detail[].msg`) of every example answer.
fn collect_words(value: &Value, words: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            if let Some(example) = object.get("value").or(object.get("example")) {
                match &example["detail"] {
                    Value::String(detail) => {
                        words.insert(detail.clone());
                    }
                    Value::Array(items) => words.extend(
                        items
                            .iter()
                            .filter_map(|item| item["msg"].as_str().map(str::to_owned)),
                    ),
                    _ => {}
                }
            }
            object
                .values()
                .for_each(|value| collect_words(value, words));
        }
        Value::Array(items) => items.iter().for_each(|value| collect_words(value, words)),
        _ => {}
    }
}

/// Every Rust file under `dir`, each cut where its tests begin.
fn sources(dir: &Path) -> String {
    let mut all = String::new();
    for entry in fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            all += &sources(&path);
        } else if path.extension().is_some_and(|ext| ext == "rs")
            && path.file_name().is_some_and(|name| name != "tests.rs")
        {
            let text = fs::read_to_string(&path).expect("a source file");
            all += text.split("#[cfg(test)]").next().unwrap_or_default();
        }
    }
    all
}
