//! `rel keygen --signing [--algorithm ed25519|ecdsa-p256] -o FILE`: a new release signing key.
//!
//! The secret key goes to FILE (mode 0600, never replacing a file) or, with `-o -`, to standard
//! output only; the public key (the line for rel.toml's `[trust]`: minisign for Ed25519, base64
//! SubjectPublicKeyInfo for ECDSA P-256; PEM for cosign-style verifiers and OpenSSL) is printed
//! and written next to the key as `FILE.pub` and `FILE.pem`.

use std::io::Write;
use std::path::Path;

use crate::cli::KeygenArgs;
use crate::commands::{Context, print_stdout};
use crate::signing::SigningKey;
use crate::{Error, Exit};

pub(super) fn keygen(ctx: &Context, args: KeygenArgs) -> Result<Exit, Error> {
    let key = SigningKey::generate_with(match args.algorithm {
        crate::cli::SigningAlgorithm::Ed25519 => crate::signing::Algorithm::Ed25519,
        crate::cli::SigningAlgorithm::EcdsaP256 => crate::signing::Algorithm::EcdsaP256,
    })?;
    let public = key.public();
    let pub_text = format!(
        "untrusted comment: rel signing public key {}\n{}\n",
        public.id_hex(),
        public.to_text()
    );
    if args.output == Path::new("-") {
        print_stdout(&key.to_secret_text());
        let _ = write!(
            std::io::stderr(),
            "signing key id {}\npublic key for rel.toml [trust] keys: {}\n{}",
            public.id_hex(),
            public.to_text(),
            public.to_pem()
        );
        return Ok(Exit::Ok);
    }
    let shown = ctx.display(&args.output);
    match crate::atomic_write::create_new(
        &args.output,
        key.to_secret_text().as_bytes(),
        Some(0o600),
    ) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(crate::signing::SigningError::KeyExists { path: shown }.into());
        }
        Err(e) => return Err(Error::io("write the signing key", &args.output, e)),
    }
    let mut written = Vec::new();
    for (ext, text) in [("pub", pub_text), ("pem", public.to_pem())] {
        let mut name = args.output.clone().into_os_string();
        name.push(format!(".{ext}"));
        let path = std::path::PathBuf::from(name);
        crate::atomic_write::write(&path, text.as_bytes())
            .map_err(|e| Error::io("write the public key", &path, e))?;
        written.push(ctx.display(&path));
    }
    print_stdout(&format!(
        "wrote {shown}: signing key id {} (mode 0600); public key in {}\n\
         trust it in rel.toml:\n\n[trust]\nkeys = [\"{}\"]\n",
        public.id_hex(),
        written.join(" and "),
        public.to_text()
    ));
    let _ = writeln!(
        std::io::stderr(),
        "keep the key out of git; give it to rel as REL_SIGNING_KEY or --signing-key-file FILE"
    );
    Ok(Exit::Ok)
}
