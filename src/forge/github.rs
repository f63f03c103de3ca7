//! GitHub REST v3: `GET /repos/{owner}/{repo}/pulls?head=owner:branch&state=open`,
//! `POST /repos/{owner}/{repo}/pulls`, `PATCH /repos/{owner}/{repo}/pulls/{number}`.

use reqwest::Method;
use serde_json::json;

use super::ForgeError as Error;
use super::{Client, Proposal, PullRequest, Target, encode};

pub(super) fn open_or_update(
    client: &Client,
    target: &Target,
    p: &Proposal<'_>,
) -> Result<PullRequest, Error> {
    let owner = target.repo.split('/').next().unwrap_or_default();
    let base_url = format!("{}/repos/{}/pulls", target.api_url, target.repo);
    let list = client.send(
        Method::GET,
        &format!(
            "{base_url}?state=open&head={}&base={}",
            encode(&format!("{owner}:{}", p.head)),
            encode(&target.base)
        ),
        None,
    )?;
    let existing = list.as_array().and_then(|a| {
        a.iter()
            .find(|pr| pr["head"]["ref"].as_str().is_none_or(|r| r == p.head))
    });
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
        Some(&json!({"title": p.title, "head": p.head, "base": target.base, "body": p.body, "maintainer_can_modify": true})),
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
        forge: "GitHub",
        what: what.to_owned(),
    }
}
