//! `replacements`: not rendered yet. Refused by name, so a revision that needs them
//! is rejected instead of applied without them.

use serde_json::Value;

use super::RenderError;
use super::build::{Builder, Level};

pub fn run(
    _: &mut Builder<'_>,
    _dir: &str,
    kfile: &str,
    _entries: &[Value],
    _level: &mut Level,
) -> Result<(), RenderError> {
    Err(RenderError::field(
        kfile,
        "replacements",
        "replacements are not rendered yet".into(),
    ))
}
