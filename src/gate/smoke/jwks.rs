//! Is a JWKS document usable for verifying tokens? At least one public signing key with the
//! parameters its key type needs, and no private key material anywhere.

use base64::Engine as _;
use serde_json::Value;

/// What a JWKS document holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Verdict {
    /// `kty/crv kid` of each usable key.
    pub usable: Vec<String>,
    /// Why each other key is not usable.
    pub unusable: Vec<String>,
    /// Keys that publish private parameters (`d`, `p`, `q`, ...): a leak, whatever else holds.
    pub private: Vec<String>,
}

pub(super) fn inspect(doc: &Value) -> Result<Verdict, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWKS document: no `keys` array")?;
    let mut v = Verdict::default();
    for (i, key) in keys.iter().enumerate() {
        let kid = key
            .get("kid")
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{i}"), |k| format!("kid {k}"));
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|p| key.get(p).is_some())
        {
            v.private.push(kid.clone());
        }
        match usable(key) {
            Ok(what) => v.usable.push(format!("{what} {kid}")),
            Err(why) => v.unusable.push(format!("{kid}: {why}")),
        }
    }
    Ok(v)
}

fn usable(key: &Value) -> Result<String, String> {
    let s = |name: &str| key.get(name).and_then(Value::as_str);
    if let Some(u) = s("use")
        && u != "sig"
    {
        return Err(format!("`use` is `{u}`, not `sig`"));
    }
    if let Some(ops) = key.get("key_ops").and_then(Value::as_array)
        && !ops.iter().any(|o| o.as_str() == Some("verify"))
    {
        return Err("`key_ops` does not include `verify`".to_owned());
    }
    let bytes = |name: &str| -> Result<usize, String> {
        let text = s(name).ok_or_else(|| format!("no `{name}`"))?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map(|b| b.len())
            .map_err(|_| format!("`{name}` is not base64url"))
    };
    match s("kty") {
        Some("OKP") => {
            let crv = s("crv").unwrap_or("");
            let want = match crv {
                "Ed25519" => 32,
                "Ed448" => 57,
                other => return Err(format!("OKP curve `{other}` is not a signing curve")),
            };
            let got = bytes("x")?;
            if got != want {
                return Err(format!("{crv} `x` has {got} bytes, not {want}"));
            }
            Ok(format!("OKP/{crv}"))
        }
        Some("EC") => {
            let crv = s("crv").unwrap_or("");
            let want = match crv {
                "P-256" => 32,
                "P-384" => 48,
                "P-521" => 66,
                other => return Err(format!("EC curve `{other}` is not supported")),
            };
            for p in ["x", "y"] {
                let got = bytes(p)?;
                if got != want {
                    return Err(format!("{crv} `{p}` has {got} bytes, not {want}"));
                }
            }
            Ok(format!("EC/{crv}"))
        }
        Some("RSA") => {
            let n = bytes("n")?;
            bytes("e")?;
            if n < 256 {
                return Err(format!(
                    "RSA modulus is {} bits (at least 2048 needed)",
                    n * 8
                ));
            }
            Ok(format!("RSA/{}", n * 8))
        }
        Some(other) => Err(format!("key type `{other}` cannot verify signatures")),
        None => Err("no `kty`".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const X32: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn usable_and_not() {
        let doc = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": X32, "kid": "a", "use": "sig"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
            {"kty": "OKP", "crv": "X25519", "x": X32, "kid": "enc"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-256", "x": X32, "y": X32, "use": "enc"},
        ]});
        let v = inspect(&doc).unwrap();
        assert_eq!(v.usable, ["OKP/Ed25519 kid a"]);
        assert_eq!(v.unusable.len(), 4);
        assert!(
            v.unusable[0].contains("Ed25519 `x` has 3 bytes, not 32"),
            "{v:?}"
        );
        assert_eq!(v.private, ["kid hmac"]);
        assert_eq!(inspect(&json!({"keys": []})).unwrap(), Verdict::default());
        assert!(inspect(&json!({"nokeys": 1})).is_err());
    }
}
