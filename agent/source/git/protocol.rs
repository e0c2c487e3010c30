//! Smart HTTP protocol (stub).
