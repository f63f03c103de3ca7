//! GitLab REST v4 merge requests: `GET /projects/{id}/merge_requests?state=opened&source_branch=B`,
//! `POST /projects/{id}/merge_requests`, `PUT /projects/{id}/merge_requests/{iid}`; `{id}` is the
//! URL-encoded project path.

use reqwest::Method;
use serde_json::json;

use super::ForgeError as Error;
use super::{Client, Proposal, PullRequest, Target, encode};

pub(super) fn open_or_update(
    client: &Client,
    target: &Target,
    p: &Proposal<'_>,
) -> Result<PullRequest, Error> {
    let base_url = format!(
        "{}/projects/{}/merge_requests",
        target.api_url,
        encode(&target.repo)
    );
    let list = client.send(
        Method::GET,
        &format!(
            "{base_url}?state=opened&source_branch={}&target_branch={}",
            encode(p.head),
            encode(&target.base)
        ),
        None,
    )?;
    let existing = list.as_array().and_then(|a| {
        a.iter()
            .find(|mr| mr["source_branch"].as_str().is_none_or(|b| b == p.head))
    });
    if let Some(mr) = existing {
        let iid = mr["iid"]
            .as_u64()
            .ok_or_else(|| bad("a merge request without an iid"))?;
        let updated = client.send(
            Method::PUT,
            &format!("{base_url}/{iid}"),
            Some(&json!({"title": p.title, "description": p.body})),
        )?;
        return Ok(PullRequest {
            number: iid,
            url: updated["web_url"].as_str().unwrap_or_default().to_owned(),
            created: false,
        });
    }
    let created = client.send(
        Method::POST,
        &base_url,
        Some(&json!({"source_branch": p.head, "target_branch": target.base, "title": p.title, "description": p.body, "remove_source_branch": true})),
    )?;
    Ok(PullRequest {
        number: created["iid"]
            .as_u64()
            .ok_or_else(|| bad("a created merge request without an iid"))?,
        url: created["web_url"].as_str().unwrap_or_default().to_owned(),
        created: true,
    })
}

fn bad(what: &str) -> Error {
    Error::UnexpectedAnswer {
        forge: "GitLab",
        what: what.to_owned(),
    }
}
