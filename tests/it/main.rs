//! Integration tests: the real binary on real files, in temporary folders.

mod bad_input;
mod behaviour;
mod corpus;
mod determinism;
mod extremes;
mod goldens;
mod layouts;
mod newcomer;
mod oracle;
mod pairwise;
mod param;
mod robust;
mod shards;
mod sweep;
mod util;
