//! Gitea and Forgejo API v1: `GET /repos/{owner}/{repo}/pulls?state=open` (filtered by
//! `head.ref`, page by page), `POST /repos/{owner}/{repo}/pulls`,
//! `PATCH /repos/{owner}/{repo}/pulls/{index}`.

use reqwest::Method;
use serde_json::json;

use super::ForgeError as Error;
use super::{Client, Proposal, PullRequest, Target};

/// Open pull requests scanned for an existing one (50 per page).
const MAX_PAGES: u32 = 20;

pub(super) fn open_or_update(
    client: &Client,
    target: &Target,
    p: &Proposal<'_>,
) -> Result<PullRequest, Error> {
    let base_url = format!("{}/repos/{}/pulls", target.api_url, target.repo);
    let mut existing = None;
    for page in 1..=MAX_PAGES {
        let list = client.send(
            Method::GET,
            &format!("{base_url}?state=open&limit=50&page={page}"),
            None,
        )?;
        let Some(items) = list.as_array() else { break };
        if let Some(pr) = items
            .iter()
            .find(|pr| pr["head"]["ref"].as_str() == Some(p.head))
        {
            existing = Some(pr.clone());
            break;
        }
        if items.len() < 50 {
            break;
        }
    }
    if let Some(pr) = existing {
        let number = pr["number"]
            .as_u64()
            .ok_or_else(|| bad("a pull request without a number"))?;
        let updated = client.send(
            Method::PATCH,
            &format!("{base_url}/{number}"),
            Some(&json!({"title": p.title, "body": p.body})),
        )?;
        return Ok(PullRequest {
            number,
            url: updated["html_url"].as_str().unwrap_or_default().to_owned(),
            created: false,
        });
    }
    let created = client.send(
        Method::POST,
        &base_url,
        Some(&json!({"title": p.title, "head": p.head, "base": target.base, "body": p.body})),
    )?;
    Ok(PullRequest {
        number: created["number"]
            .as_u64()
            .ok_or_else(|| bad("a created pull request without a number"))?,
        url: created["html_url"].as_str().unwrap_or_default().to_owned(),
        created: true,
    })
}

fn bad(what: &str) -> Error {
    Error::UnexpectedAnswer {
        forge: "Gitea",
        what: what.to_owned(),
    }
}
