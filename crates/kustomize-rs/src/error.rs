//! The renderer's errors. Each names the file it is about and, where there is one, the line.

use std::fmt;
use std::path::PathBuf;

/// A file and an optional 1-based line in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
}

impl Location {
    /// A location without a line.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Location {
            path: path.into(),
            line: None,
        }
    }
    /// A location with a line (0 means unknown).
    pub fn at(path: impl Into<PathBuf>, line: usize) -> Self {
        Location {
            path: path.into(),
            line: (line > 0).then_some(line),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}", self.path.display(), l),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// Why a kustomization could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{at}: cannot read: {source}")]
    Read {
        /// What could not be read.
        at: Location,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("{at}: invalid YAML: {message}")]
    Yaml {
        /// Where.
        at: Location,
        /// The parser's message.
        message: String,
    },
    /// A YAML file exceeds the parser's budget (alias expansion, node count or nesting depth):
    /// hostile input such as a "billion laughs" alias bomb.
    #[error("{at}: YAML refused: {message}")]
    YamlBudget {
        /// Where the limit was crossed.
        at: Location,
        /// Which limit.
        message: String,
    },
    /// A directory has no kustomization file.
    #[error(
        "{dir}: no kustomization file (expected one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization')"
    )]
    NoKustomization {
        /// The directory.
        dir: PathBuf,
    },
    /// A directory has more than one kustomization file.
    #[error("{dir}: found multiple kustomization files; keep only one of {names}")]
    MultipleKustomizations {
        /// The directory.
        dir: PathBuf,
        /// The file names found.
        names: String,
    },
    /// A kustomization has a field kustomize does not know.
    #[error("{at}: invalid kustomization: unknown field `{field}`")]
    UnknownField {
        /// Where the field is.
        at: Location,
        /// The field name.
        field: String,
    },
    /// A kustomization field has the wrong shape or value.
    #[error("{at}: invalid kustomization: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// A resource, component, patch or generator source does not exist.
    #[error("{at}: '{entry}' not found: no such file or directory")]
    NotFound {
        /// The entry in the kustomization.
        at: Location,
        /// The entry's text.
        entry: String,
    },
    /// A file load escapes the kustomization root (kustomize's default load restrictor).
    #[error("{at}: security; file '{file}' is not in or below '{root}'")]
    OutsideRoot {
        /// The entry in the kustomization.
        at: Location,
        /// The file that was refused.
        file: PathBuf,
        /// The kustomization root.
        root: PathBuf,
    },
    /// Kustomizations include each other in a cycle.
    #[error("{at}: cycle detected: {chain}")]
    Cycle {
        /// The entry that closes the cycle.
        at: Location,
        /// The directories in the cycle.
        chain: String,
    },
    /// Two resources have the same id.
    #[error("{at}: may not add resource with an already registered id: {id}")]
    DuplicateId {
        /// The kustomization (and entry) that added the second one.
        at: Location,
        /// The id.
        id: String,
    },
    /// A transformer, patch or generator failed.
    #[error("{at}: {message}")]
    Transform {
        /// The kustomization and its entry.
        at: Location,
        /// What failed.
        message: String,
    },
    /// A rendered object's kind, name or namespace cannot be used in an output file name.
    #[error(
        "{kind} '{name}': cannot write it to its own file: {field} {value:?} is not a single safe file name component ({reason})"
    )]
    UnsafeFileName {
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The offending field.
        field: String,
        /// Its value.
        value: String,
        /// Why it is unsafe.
        reason: String,
    },
    /// A resource or component directory given as an absolute path (kustomize refuses them).
    #[error("{at}: new root '{}' cannot be absolute", dir.display())]
    AbsoluteRoot {
        /// The entry in the kustomization.
        at: Location,
        /// The directory as written.
        dir: PathBuf,
    },
    /// A feature kustomize has that this renderer does not implement.
    #[error("{at}: not supported by rel's renderer: {what}")]
    Unsupported {
        /// Where it is used.
        at: Location,
        /// The feature.
        what: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error for a YAML file that did not parse, at `path` (line from `e`, plus `offset`
    /// lines when the YAML is embedded in another file).
    pub(crate) fn yaml(
        path: &std::path::Path,
        offset: usize,
        e: crate::yaml::SyntaxError,
    ) -> Error {
        let at = Location::at(path, offset + e.line);
        if e.over_budget {
            Error::YamlBudget {
                at,
                message: e.message,
            }
        } else {
            Error::Yaml {
                at,
                message: e.message,
            }
        }
    }

    /// A stable code for the variant (`kustomize::yaml`, `kustomize::unsupported`, ...).
    pub fn code_name(&self) -> &'static str {
        match self {
            Error::Read { .. } => "kustomize::read",
            Error::Yaml { .. } => "kustomize::yaml",
            Error::YamlBudget { .. } => "kustomize::yaml_budget",
            Error::NoKustomization { .. } => "kustomize::no_kustomization",
            Error::MultipleKustomizations { .. } => "kustomize::multiple_kustomizations",
            Error::UnknownField { .. } => "kustomize::unknown_field",
            Error::Invalid { .. } => "kustomize::invalid",
            Error::NotFound { .. } => "kustomize::not_found",
            Error::OutsideRoot { .. } => "kustomize::outside_root",
            Error::Cycle { .. } => "kustomize::cycle",
            Error::DuplicateId { .. } => "kustomize::duplicate_id",
            Error::Transform { .. } => "kustomize::transform",
            Error::UnsafeFileName { .. } => "kustomize::unsafe_file_name",
            Error::Unsupported { .. } => "kustomize::unsupported",
            Error::AbsoluteRoot { .. } => "kustomize::absolute_root",
        }
    }

    /// Whether this is a feature rel's renderer does not implement (not a fault of the input).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported { .. })
    }

    /// A hint on how to fix the problem (or, for [`Error::Unsupported`], that the feature is
    /// not supported), for the CLI's reporter.
    pub fn help_text(&self) -> Option<&'static str> {
        Some(match self {
            Error::Read { .. } => "check the path exists and is readable",
            Error::Yaml { .. } => "fix the YAML syntax at the line shown",
            Error::YamlBudget { .. } => {
                "the file expands to far more YAML than any manifest needs (aliases of aliases, or extreme nesting); write the repeated parts out or split the file"
            }
            Error::NoKustomization { .. } => {
                "a directory listed under resources or components needs a kustomization.yaml"
            }
            Error::MultipleKustomizations { .. } => {
                "keep exactly one kustomization file in the directory"
            }
            Error::UnknownField { .. } => {
                "check the spelling against the kustomization reference; kustomize refuses unknown fields too"
            }
            Error::Invalid { .. } => {
                "quote values kustomize reads as numbers or booleans (\"1.20\", \"yes\") and check the field's shape"
            }
            Error::NotFound { .. } => "the path is relative to the kustomization's directory",
            Error::AbsoluteRoot { .. } => {
                "write the directory relative to the kustomization's directory (e.g. ../base): kustomize refuses absolute directories"
            }
            Error::OutsideRoot { .. } => {
                "kustomize only loads files in or below the kustomization's directory; move the file, or list its directory (with a kustomization) as a resource"
            }
            Error::Cycle { .. } => "remove one of the references so the kustomizations form a tree",
            Error::DuplicateId { .. } => {
                "two resources have the same kind, name and namespace; rename one or patch the existing one instead"
            }
            Error::Transform { .. } => {
                "the transformer, patch, generator or var at the line shown failed on the object named; check it against the resources it targets (`kubectl kustomize` fails the same way)"
            }
            Error::UnsafeFileName { .. } => {
                "Kubernetes names never contain '/' or '..'; fix the object's metadata, or render to one stream (no -o DIR)"
            }
            Error::Unsupported { .. } => {
                "this kustomize feature is not supported by rel's renderer (see crates/kustomize-rs/README.md, \"Not supported\"); the kustomization itself may be valid"
            }
        })
    }
}

impl miette::Diagnostic for Error {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(Error::code_name(self)))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Error::help_text(self).map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}
