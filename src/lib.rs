//! rel
