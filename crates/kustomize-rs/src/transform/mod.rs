//! The transformers, generators and the final ordering, one module each.

pub mod generate;
pub mod images;
pub mod meta;
pub mod nameref;
pub mod patch_json;
pub mod patch_sm;
pub mod replacements;
pub mod select;
pub mod sort;
pub mod vars;
