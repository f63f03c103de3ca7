//! The JSON bodies the gateway and the worker exchange, and the worker's deterministic answer.
//! Role-independent, so clients (tests, the smoke gate) can use it without either role.

use serde::{Deserialize, Serialize};

/// The longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

/// `POST /api/query` on the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryRequest {
    pub query: String,
    /// Test-only slow path, passed on to the worker (see [`WorkRequest::delay_ms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// The gateway's answer: the worker's answer and which worker gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResponse {
    pub answer: String,
    pub worker_id: String,
}

/// `POST /work` on the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkRequest {
    pub query: String,
    /// Milliseconds to wait before answering. Honoured only up to the worker's
    /// `WORKER_MAX_DELAY_MS` (0 by default: ignored), so tests can hold a request in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// The worker's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkResponse {
    pub answer: String,
    pub worker_id: String,
}

/// The worker's deterministic answer: the word count and the FNV-1a 64 checksum of the query.
pub fn answer(query: &str) -> String {
    let words = query.split_whitespace().count();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in query.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("words={words} fnv1a64={hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_is_deterministic_and_known() {
        // FNV-1a 64 of "" and of "a" are the published test vectors.
        assert_eq!(answer(""), "words=0 fnv1a64=cbf29ce484222325");
        assert_eq!(answer("a"), "words=1 fnv1a64=af63dc4c8601ec8c");
        assert_eq!(answer("count the nodes"), answer("count the nodes"));
        assert_ne!(answer("count the nodes"), answer("count the node"));
    }

    #[test]
    fn delay_is_optional_on_the_wire() {
        let req: WorkRequest = serde_json::from_str(r#"{"query":"q"}"#).unwrap();
        assert_eq!(req.delay_ms, None);
        assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"query":"q"}"#);
    }
}
