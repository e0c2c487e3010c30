//! Error text shared by every layer: one line per error, causes joined.
//!
//! This module sits below everything (it imports nothing of the crate), so the loop,
//! the stages and the command line can all render errors the same way.

/// Joins any error and its sources into one line, skipping causes whose text the
/// outer message already contains, so that a log field or a status stays one line.
pub fn one_line_error<E: std::error::Error + ?Sized>(err: &E) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}
