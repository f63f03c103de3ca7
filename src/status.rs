//! `rel status`: per environment, the digests its overlay pins, which release they match, and
//! whether that release is validated or held; the environment's freeze, its soak window with
//! where each version validated there stands in it, and the holds set in it. Also the release
//! matching that promote and rollback use to name "the version an environment runs".

use std::collections::BTreeMap;
use std::path::Path;

use image_ref::Digest;

use crate::Error;
use crate::config::Config;
use crate::hold::Holds;
use crate::lockfile::Lockfile;
use crate::overlay_pin::{component_images, kustomization_file, pins_of};

/// Every release lockfile in `releases/`, newest version first. Files that do not parse are
/// skipped (the coherence gate reports them).
pub(crate) fn releases(root: &Path) -> Vec<Lockfile> {
    crate::releases::index(root)
        .lockfiles
        .into_iter()
        .filter_map(|(_, p)| match Lockfile::load(&p) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("skipping {}: {e}", p.display());
                None
            }
        })
        .collect()
}

/// The release whose every component the overlay pins at exactly its digest.
pub(crate) fn match_release<'a>(
    pins: &BTreeMap<String, Digest>,
    releases: &'a [Lockfile],
    config: &Config,
) -> Option<&'a Lockfile> {
    releases.iter().find(|l| {
        !l.components.is_empty()
            && component_images(l, config).is_ok_and(|images| {
                l.components
                    .iter()
                    .all(|(name, c)| pins.get(&images[name]).is_some_and(|d| *d == c.digest))
            })
    })
}

/// One environment's state.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvStatus {
    pub env: String,
    pub overlay: String,
    /// `images[].name` → digest.
    pub pins: BTreeMap<String, Digest>,
    /// The release the pins match exactly.
    pub release: Option<String>,
    /// Environments the matched release has a validation record for.
    pub validated_in: Vec<String>,
    /// The hold on the matched release, if any.
    pub held: Option<crate::hold::Hold>,
    /// Why the overlay could not be read, if it could not.
    pub error: Option<String>,
    /// The environment's freeze (`releases/freezes.yaml`), active or expired; `null`: none.
    pub freeze: Option<FreezeStatus>,
    /// The soak window of promotions out of this environment (`24h`); `null`: none.
    pub soak: Option<String>,
    /// With a soak window: every version validated here and where it stands in the window,
    /// newest version first.
    pub soaking: Vec<crate::soak::Soak>,
    /// Versions held after a rollback in this environment.
    pub holds: Vec<crate::hold::Hold>,
    /// A cluster environment's Argo CD Application and Rollouts, with the commands on-call runs
    /// against them (none for a local stage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoStatus>,
}

/// A freeze and whether it holds now.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FreezeStatus {
    #[serde(flatten)]
    pub freeze: crate::freeze::Freeze,
    /// False once `until` has passed (the entry stays until `rel unfreeze`).
    pub active: bool,
}

/// The Argo objects of a cluster environment and the commands for them.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ArgoStatus {
    #[serde(flatten)]
    pub objects: crate::oncall::OnCall,
    pub commands: Vec<crate::oncall::Command>,
}

/// The status of every environment, from the working tree.
pub(crate) fn status(config: &Config) -> Result<Vec<EnvStatus>, Error> {
    let all = releases(&config.root);
    let holds = Holds::load(&config.root)?;
    let freezes = crate::freeze::Freezes::load(&config.root)?;
    let now = crate::clock::now()?;
    let records = crate::releases::index(&config.root).records;
    let mut out = Vec::new();
    for env in config.environments.values() {
        let mut soaking = Vec::new();
        if let Some(window) = env.soak {
            // Newest version first.
            for r in records.iter().rev().filter(|r| r.env == env.name) {
                let shown = format!(
                    "{}/{}",
                    crate::releases::DIR,
                    r.path.file_name().unwrap_or_default().to_string_lossy()
                );
                match crate::record::ValidationRecord::load(&config.root, &r.version, &r.env)
                    .and_then(|rec| match rec {
                        Some(rec) => crate::soak::Soak::of(&rec, &shown, window, now).map(Some),
                        None => Ok(None),
                    }) {
                    Ok(Some(soak)) => soaking.push(soak),
                    Ok(None) => {}
                    Err(e) => tracing::warn!("skipping {shown}: {e}"),
                }
            }
        }
        let mut s = EnvStatus {
            env: env.name.clone(),
            overlay: env.overlay.display().to_string(),
            pins: BTreeMap::new(),
            release: None,
            validated_in: Vec::new(),
            held: None,
            error: None,
            freeze: freezes.get(&env.name).map(|f| FreezeStatus {
                freeze: f.clone(),
                active: f.is_active(now),
            }),
            soak: env.soak.map(crate::clock::format_duration_exact),
            soaking,
            holds: holds
                .holds
                .iter()
                .filter(|h| h.env == env.name)
                .cloned()
                .collect(),
            argocd: crate::oncall::for_env_rendered(config, env).map(|o| ArgoStatus {
                commands: o.all_commands(),
                objects: o,
            }),
        };
        let read = kustomization_file(&config.overlay_dir(env)).and_then(|file| {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::io("read the overlay", &file, e))?;
            pins_of(&text, &file)
        });
        match read {
            Ok(pins) => {
                if let Some(l) = match_release(&pins, &all, config) {
                    s.release = Some(l.version.to_string());
                    s.validated_in = config
                        .environments
                        .keys()
                        .filter(|e| {
                            crate::releases::record_path(&config.root, &l.version, e).is_file()
                        })
                        .cloned()
                        .collect();
                    s.held = holds.get(&l.version).cloned();
                }
                s.pins = pins;
            }
            Err(e) => s.error = Some(crate::error::chain(&e)),
        }
        out.push(s);
    }
    Ok(out)
}

/// The status as a table.
pub(crate) fn to_table(statuses: &[EnvStatus]) -> String {
    let mut out = String::new();
    for s in statuses {
        let release = s.release.as_deref().unwrap_or("(no release matches)");
        let validated = if s.validated_in.is_empty() {
            "not validated".to_owned()
        } else {
            format!("validated in {}", s.validated_in.join(", "))
        };
        let held = s
            .held
            .as_ref()
            .map(|h| format!(", HELD since {} ({})", h.since, h.reason))
            .unwrap_or_default();
        out.push_str(&format!("{} ({}): {release}", s.env, s.overlay));
        if s.release.is_some() {
            out.push_str(&format!(", {validated}{held}"));
        }
        out.push('\n');
        if let Some(f) = &s.freeze {
            let until = f.freeze.until.as_deref().unwrap_or("`rel unfreeze`");
            if f.active {
                out.push_str(&format!(
                    "  FROZEN: {} (by {}, since {}, until {until})\n",
                    f.freeze.reason, f.freeze.actor, f.freeze.since
                ));
            } else {
                out.push_str(&format!(
                    "  freeze expired at {until}: {} (by {}; `rel unfreeze --env {}` removes it)\n",
                    f.freeze.reason, f.freeze.actor, s.env
                ));
            }
        }
        if let Some(window) = &s.soak {
            // Every version still soaking, and the newest one that is through.
            let through = s.soaking.iter().find(|k| k.eligible);
            for k in s.soaking.iter().filter(|k| !k.eligible).chain(through) {
                if k.eligible {
                    out.push_str(&format!(
                        "  soak {window}: {} soaked (eligible since {})\n",
                        k.version, k.eligible_at
                    ));
                } else {
                    out.push_str(&format!(
                        "  soak {window}: {} soaking, eligible at {} (in {})\n",
                        k.version,
                        k.eligible_at,
                        k.remaining()
                    ));
                }
            }
        }
        for h in &s.holds {
            out.push_str(&format!(
                "  hold: {} (by {}, since {}): {}\n",
                h.version, h.actor, h.since, h.reason
            ));
        }
        if let Some(e) = &s.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        let w = s.pins.keys().map(|k| k.len()).max().unwrap_or(0);
        for (image, digest) in &s.pins {
            out.push_str(&format!("  {image:<w$}  {digest}\n"));
        }
        if let Some(a) = &s.argocd {
            let rollouts: Vec<&str> = a.objects.rollouts.iter().map(|r| r.name.as_str()).collect();
            out.push_str(&format!("  Argo CD Application {}", a.objects.app));
            if !rollouts.is_empty() {
                out.push_str(&format!(", Rollouts {}", rollouts.join(", ")));
            }
            out.push_str(" (rel runs none of these; git is the authority):\n");
            let w = a.commands.iter().map(|c| c.line.len()).max().unwrap_or(0);
            for c in &a.commands {
                out.push_str(&format!("    {:<w$}  # {}\n", c.line, c.purpose));
            }
        }
    }
    out
}
