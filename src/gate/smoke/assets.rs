//! The assets an SPA index references: `<script src>` and `<link href>` of stylesheets, module
//! preloads and icons, on the same origin.

/// Asset references of `html`, in order, deduplicated; external origins and `data:` are left out.
pub fn referenced(html: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find('<') {
        let start = at + i + 1;
        let end = lower[start..].find('>').map_or(lower.len(), |j| start + j);
        let tag = &html[start..end];
        let tag_lower = &lower[start..end];
        at = end;
        let wanted = if tag_lower.starts_with("script") {
            attr(tag, "src")
        } else if tag_lower.starts_with("link") {
            let rel = attr(tag, "rel").unwrap_or_default().to_ascii_lowercase();
            let kinds = ["stylesheet", "modulepreload", "preload", "icon", "manifest"];
            if rel.split_whitespace().any(|r| kinds.contains(&r)) {
                attr(tag, "href")
            } else {
                None
            }
        } else {
            None
        };
        if let Some(url) = wanted
            && is_same_origin(&url)
            && !out.contains(&url)
        {
            out.push(url);
        }
    }
    out
}

fn is_same_origin(url: &str) -> bool {
    !(url.is_empty()
        || url.starts_with("//")
        || url.contains("://")
        || url.starts_with("data:")
        || url.starts_with('#'))
}

/// The value of attribute `name` in a tag's text (quoted or bare).
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let pos = from + i;
        from = pos + name.len();
        let before_ok = pos == 0 || lower.as_bytes()[pos - 1].is_ascii_whitespace();
        let rest = tag[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value = rest[1..].trim_start();
        let v = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '/' && value.ends_with('/'))
                .next()
                .unwrap_or(""),
        };
        return Some(v.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_scripts_styles_and_preloads() {
        let html = r#"<!doctype html><html><head>
<link rel="stylesheet" href="/assets/index-abc.css">
<link rel=modulepreload href=/assets/vendor.js>
<link rel="canonical" href="/elsewhere">
<script type="module" crossorigin src="/assets/index-def.js"></script>
<SCRIPT SRC='./app.js'></SCRIPT>
<script src="https://cdn.example.com/x.js"></script>
<script>let datasrc = "no";</script>
<link rel="icon" href="data:image/png;base64,AA">
</head><body><div id="root"></div><script src="/assets/index-def.js"></script></body></html>"#;
        assert_eq!(
            referenced(html),
            [
                "/assets/index-abc.css",
                "/assets/vendor.js",
                "/assets/index-def.js",
                "./app.js"
            ]
        );
    }
}
