//! Loopback addresses: each stage claims one /24 of 127.0.0.0/8 (Linux routes all of it to `lo`
//! with no configuration), then gives every pod and every Service its own address in it.
//!
//! A block is claimed by holding a listener on `127.A.B.254:CLAIM_PORT` for the stage's life;
//! another stage that tries the same block fails to bind and moves on. The first block tried is
//! derived from the stage's name (the environment), so a stage gets the same addresses each time
//! unless another stage holds them: `local` is `127.x.y.0/24` on every machine, and its Services'
//! addresses (in manifest order from `.200`) can be written in rel.toml's smoke checks.
//! Pods get `.1`–`.199` (lowest free first); Services `.200`–`.253`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};

use serde::{Deserialize, Serialize};

use crate::error::StageError;

/// The port of the claim listener (on the block's `.254`).
pub const CLAIM_PORT: u16 = 47_254;
const FIRST_A: u8 = 64;
const BLOCKS: usize = 64 * 256;
/// How many blocks a stage tries before giving up.
const TRIES: usize = 512;

const FIRST_POD: u8 = 1;
const LAST_POD: u8 = 199;
const FIRST_SERVICE: u8 = 200;
const LAST_SERVICE: u8 = 253;

/// `127.A.B.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressBlock {
    pub a: u8,
    pub b: u8,
}

impl AddressBlock {
    pub fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.a, self.b, host)
    }

    fn nth(n: usize) -> AddressBlock {
        let n = n % BLOCKS;
        AddressBlock {
            a: FIRST_A + (n / 256) as u8,
            b: (n % 256) as u8,
        }
    }

    fn start_for(name: &str) -> usize {
        let d = image_ref::Digest::of(name.as_bytes());
        usize::from_str_radix(&d.hex()[..8], 16).unwrap_or(0)
    }

    /// The block a stage named `name` tries first.
    pub fn preferred(name: &str) -> AddressBlock {
        Self::nth(Self::start_for(name))
    }

    /// Claim a free block for the stage named `name`: the listener is the claim; keep it open as
    /// long as the stage runs.
    pub fn claim(name: &str) -> Result<(AddressBlock, TcpListener), StageError> {
        let start = Self::start_for(name);
        for i in 0..TRIES {
            let block = Self::nth(start + i);
            if let Ok(listener) = TcpListener::bind((block.ip(254), CLAIM_PORT)) {
                return Ok((block, listener));
            }
        }
        Err(StageError::NoAddressBlock { tried: TRIES })
    }

    /// The block [`AddressBlock::claim`] would take now, without claiming it (for dry runs).
    pub fn peek(name: &str) -> Result<AddressBlock, StageError> {
        Self::claim(name).map(|(block, _)| block)
    }
}

impl std::fmt::Display for AddressBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "127.{}.{}.0/24", self.a, self.b)
    }
}

/// Hands out the block's addresses.
#[derive(Debug, Clone)]
pub struct Allocator {
    pub block: AddressBlock,
    used: BTreeSet<u8>,
}

impl Allocator {
    pub fn new(block: AddressBlock) -> Self {
        Allocator {
            block,
            used: BTreeSet::new(),
        }
    }

    /// The lowest free pod address.
    pub fn pod(&mut self) -> Result<Ipv4Addr, StageError> {
        self.take(FIRST_POD, LAST_POD)
    }

    /// The lowest free Service address.
    pub fn service(&mut self) -> Result<Ipv4Addr, StageError> {
        self.take(FIRST_SERVICE, LAST_SERVICE)
    }

    fn take(&mut self, first: u8, last: u8) -> Result<Ipv4Addr, StageError> {
        let host = (first..=last).find(|h| !self.used.contains(h)).ok_or(
            StageError::TooManyAddresses {
                limit: usize::from(last - first) + 1,
            },
        )?;
        self.used.insert(host);
        Ok(self.block.ip(host))
    }

    /// Mark `ip` as taken (a pod or Service that already runs).
    pub fn reserve(&mut self, ip: Ipv4Addr) {
        self.used.insert(ip.octets()[3]);
    }

    /// Give `ip` back.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip.octets()[3]);
    }
}

/// The port a Service port's proxy listens on: the port itself, or `port + 10000` below 1024
/// (binding those needs privileges this process does not have).
pub fn proxy_port(port: u16) -> u16 {
    if port < 1024 { port + 10_000 } else { port }
}
