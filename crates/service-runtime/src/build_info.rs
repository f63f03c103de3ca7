//! What `/version` reports.

use serde::Serialize;

/// The component, its version, the git commit it was built from, and its role.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BuildInfo {
    pub component: &'static str,
    pub version: &'static str,
    pub git_commit: String,
    pub role: &'static str,
}

impl BuildInfo {
    /// `compiled_commit` is `option_env!("REL_GIT_COMMIT")` evaluated in the binary's crate (see
    /// [`build_info!`](crate::build_info!)); a run-time `REL_GIT_COMMIT` is used only when the build
    /// did not record one.
    pub fn new(
        component: &'static str,
        version: &'static str,
        role: &'static str,
        compiled_commit: Option<&'static str>,
    ) -> Self {
        let git_commit = compiled_commit
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                std::env::var(crate::env::REL_GIT_COMMIT)
                    .ok()
                    .filter(|c| !c.is_empty())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            component,
            version,
            git_commit,
            role,
        }
    }
}

/// `build_info!("gateway", "gateway")`: the [`BuildInfo`] of the calling crate.
#[macro_export]
macro_rules! build_info {
    ($component:expr, $role:expr) => {
        $crate::BuildInfo::new(
            $component,
            // A release build says which release it is (rel sets it); otherwise the crate's version.
            match option_env!("REL_RELEASE_VERSION") {
                Some(v) if !v.is_empty() => v,
                _ => env!("CARGO_PKG_VERSION"),
            },
            $role,
            option_env!("REL_GIT_COMMIT"),
        )
    };
}
