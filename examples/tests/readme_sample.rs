//! The workspace README shows the same code sample as the `bluegreen` crate's README, whose
//! doctest compiles it (`cargo test -p bluegreen`). The facade cannot include the workspace README
//! (a packaged crate holds only its own files), so this checks, in the unpublished examples
//! package, that the two samples are the same text.

use std::path::Path;

/// The first ```` ```rust ```` block of `markdown`, without its fences.
fn first_rust_block(markdown: &str) -> Option<String> {
    let mut lines = markdown.lines().skip_while(|line| !line.starts_with("```rust"));
    lines.next()?;
    let block: Vec<&str> = lines.take_while(|line| !line.starts_with("```")).collect();
    Some(block.join("\n"))
}

#[test]
fn the_workspace_readme_shows_the_sample_the_facade_compiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let workspace = first_rust_block(&read("README.md")).expect("a rust block in README.md");
    let facade = first_rust_block(&read("bluegreen/README.md")).expect("a rust block in bluegreen/README.md");
    assert!(
        workspace.contains("use bluegreen::"),
        "the sample links the facade:\n{workspace}"
    );
    assert_eq!(
        workspace, facade,
        "README.md and bluegreen/README.md show different samples"
    );
}
