//! Tree extraction (stub, filled in below).
