//! The pod-list reader (`--pods`, `--nodes`) and the kubeconfig parser on arbitrary bytes (the
//! parser alone: a kubeconfig can name an exec plugin, and a fuzzer must never run one).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rel::kube_source::parse_pods_and_nodes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rel::kube_source::parse_kubeconfig(text);
    }
});
