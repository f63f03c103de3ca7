//! Genesis envelopes: shared secrets and config sealed under a master key with NaCl secretbox
//! (XSalsa20-Poly1305), for transport as base64 text.
//!
//! This crate does no I/O: no files, no environment, no network, no clock, no printing. Callers
//! pass text in, get typed values and errors out. The format is documented in [`envelope`].
//!
//! - [`MasterKey`]: generate, parse and print (base64) the 32-byte key; [`KeyId`] names it.
//! - [`seal`], [`open`], [`open_any_env`], [`check`], [`inspect`], [`reseal`]: the envelope.
//! - [`parse_dotenv`]: the source `rel seal` reads.
//! - [`diff()`]: what a source would change, values shown as keyed [`Fingerprint`]s.
//! - [`autoload()`]: the set-if-absent plan a service applies at boot.
//!
//! Secret values are [`SecretString`]s: `Debug` prints `[REDACTED]`, memory is zeroized on drop.
//! No error carries a value or key material.

pub mod autoload;
pub mod diff;
pub mod dotenv;
pub mod entries;
pub mod envelope;
pub mod key;
pub mod names;

pub use autoload::{AutoloadPlan, autoload};
pub use diff::{Changed, Diff, Fingerprint, diff, fingerprint};
pub use dotenv::{DotenvError, DotenvErrorKind, parse_dotenv};
pub use entries::Entries;
pub use envelope::{
    Envelope, FORMAT_VERSION, Header, MAGIC, OpenError, Opened, ResealError, Resealed, SealError,
    Summary, check, inspect, open, open_any_env, reseal, reseal_with_rng, seal, seal_with_rng,
};
pub use key::{KeyError, KeyId, MasterKey};
pub use names::{EntryName, EnvName, NameError};
pub use secrecy::{ExposeSecret, SecretString};

/// Entry points for the fuzz targets. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decode arbitrary bytes as an envelope plaintext; true when they decode.
    pub fn decode_plaintext(bytes: &[u8]) -> bool {
        crate::envelope::decode_plaintext(bytes).is_ok()
    }
}
