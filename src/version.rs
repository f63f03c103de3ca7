//! Release versions: semantic versions (`0.4.0`, `1.2.3-rc.1`), parsed once at the edge.

use std::fmt;
use std::str::FromStr;

/// The ending that validation record names use (`<v>.<env>.validation.yaml`).
pub(crate) const RESERVED_SUFFIX: &str = ".validation";

/// A release version (semver 2.0).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(semver::Version);

/// Why a string is not a release version.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
#[error(
    "`{input}` is not a semantic version ({reason}); write it as MAJOR.MINOR.PATCH, e.g. `0.4.0` or `1.2.3-rc.1`"
)]
#[diagnostic(help(
    "release versions are semver 2.0 without a leading `v`: `0.4.0`, `1.2.3-rc.1`, `1.2.3+build.5`"
))]
pub struct VersionError {
    pub input: String,
    pub reason: String,
}

impl Version {
    pub fn semver(&self) -> &semver::Version {
        &self.0
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.strip_prefix('v').unwrap_or(input);
        if trimmed != input {
            return Err(VersionError {
                input: input.to_owned(),
                reason: "no leading `v`".to_owned(),
            });
        }
        let parsed = semver::Version::parse(input).map_err(|e| VersionError {
            input: input.to_owned(),
            reason: e.to_string(),
        })?;
        // `releases/<v>.yaml` must never be the name of a validation record
        // (`releases/<v>.<env>.validation.yaml`): refuse every version that could produce one.
        if input.ends_with(RESERVED_SUFFIX) {
            return Err(VersionError {
                input: input.to_owned(),
                reason: format!(
                    "a version may not end in `{RESERVED_SUFFIX}`: its lockfile would be named like a validation record"
                ),
            });
        }
        Ok(Version(parsed))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.0)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for ok in ["0.9.14", "1.0.0", "1.2.3-rc.1", "1.2.3+build.5", "10.20.30"] {
            assert_eq!(ok.parse::<Version>().unwrap().to_string(), ok);
        }
        for collides in ["1.0.0-rc.staging.validation", "1.0.0+x.validation"] {
            let e = collides.parse::<Version>().unwrap_err();
            assert!(
                e.to_string().contains("named like a validation record"),
                "{e}"
            );
        }
        for (bad, why) in [
            ("0.9", "0.9"),
            ("v1.0.0", "no leading `v`"),
            ("1.0.0.0", "1.0.0.0"),
            ("01.0.0", "leading zero"),
            ("", "empty"),
            ("latest", "latest"),
        ] {
            let e = bad.parse::<Version>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!("0.10.0".parse::<Version>().unwrap() > "0.9.14".parse::<Version>().unwrap());
    }
}
