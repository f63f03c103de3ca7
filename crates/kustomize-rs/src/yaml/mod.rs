//! YAML in and out: a typed tree, a parser on `saphyr-parser` events and an emitter that prints
//! exactly what kustomize prints.

pub mod emit;
pub mod parse;
pub mod resolve;
pub mod value;

pub use emit::{emit_document, to_yaml};
pub use parse::{Document, SyntaxError, Typing, parse_documents, parse_documents_with};
pub use value::{Map, Value};
