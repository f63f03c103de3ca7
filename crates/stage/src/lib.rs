//! The local stage: one machine behaving like a small Kubernetes cluster for an environment's
//! rendered manifests, with no container engine and no cluster.
//!
//! The caller renders the overlay and hands the objects to [`plan::plan`]; [`Stage::start`] runs
//! the plan; [`Stage::converge`] rolls it to a new version; [`Stage::stop`] (or [`state::down`]
//! from another process) stops it; [`state::read`] and [`StageState::live_pods`] tell what runs.
//!
//! | Kubernetes | on the stage |
//! | --- | --- |
//! | Deployment, StatefulSet, DaemonSet (one node), Job, Argo Rollout (`template` or `workloadRef`) | one process per container per replica, from the image by digest |
//! | image | unpacked once per manifest digest from an OCI layout ([`oci::unpack`]); the entrypoint runs from the unpacked root filesystem |
//! | pod IP | its own loopback address `127.A.B.N` (see [`net`]) |
//! | Service | its own loopback address and a TCP proxy per port to the *ready* selected pods, round robin ([`proxy`]) |
//! | cluster DNS | Service names in env values and args are rewritten to Service addresses ([`rewrite`]) |
//! | env, envFrom, valueFrom | resolved like the kubelet ([`env`]); the process gets that environment and nothing else |
//! | emptyDir / PVC / configMap / secret volumes | directories under the stage directory; mount paths in values rewritten |
//! | readinessProbe httpGet / tcpSocket | run against the pod address; gates Services and sync waves |
//! | restartPolicy, backoffLimit | restarts with exponential backoff (capped at 5 min) |
//! | preStop sleep, SIGTERM, terminationGracePeriodSeconds, SIGKILL | the same, to the pod's process group |
//! | Argo CD PreSync hooks, sync waves | hooks run to completion first; waves start in order, each ready before the next |
//!
//! **What is not isolated.** Pods are host processes of the invoking user: no chroot, no
//! namespaces (mount, pid, network, user), no cgroups. Resource limits, securityContext
//! (runAsUser, readOnlyRootFilesystem, capabilities, seccomp) and the image's `User` are not
//! enforced. A pod can reach every address of the machine and read every file the user can;
//! absolute paths a program opens that are not mount paths named in its env or args resolve on
//! the host, not in the image. A program that ignores its listen-address setting and binds
//! `0.0.0.0:PORT` collides with the next replica. Liveness and startup probes are not run;
//! exec/grpc/HTTPS readiness probes, hostNetwork, initContainers, and hostPath and other volume
//! kinds are refused before anything starts. Kubernetes' `<SVC>_SERVICE_HOST` variables are not
//! set.

pub mod env;
pub mod error;
pub mod net;
pub mod objects;
pub mod plan;
pub mod probe;
mod proxy;
pub mod rewrite;
pub mod run;
pub mod state;

pub use error::StageError;
pub use net::{AddressBlock, Allocator};
pub use plan::{ClusterSecret, Plan, PlanOptions, plan};
pub use rewrite::{Rewrite, RewriteKind};
pub use run::{Claim, ConvergeReport, RunOptions, Stage};
pub use state::{DownReport, Phase, StageState, down, read};
