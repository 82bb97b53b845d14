//! `list-public-api FILE.json`: prints the public API that rustdoc's JSON describes, one item a
//! line, sorted, as `public-api` renders it (the format `cargo public-api` prints).
//!
//! Blanket impls (`impl<T> From<T> for T`, `Any`, `Borrow`, …) are left out: they follow from the
//! items and only bury them. Auto trait impls stay: a type that stops being `Send` or `Sync`
//! breaks its users.

use std::{error::Error, process::ExitCode};

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: list-public-api RUSTDOC.json");
        return ExitCode::from(2);
    };
    match list(path.as_ref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("list-public-api: {}: {error}", path.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}

fn list(path: &std::path::Path) -> Result<(), Box<dyn Error>> {
    let api = public_api::Builder::from_rustdoc_json(path).omit_blanket_impls(true).build()?;
    for item in api.items() {
        println!("{item}");
    }
    Ok(())
}
