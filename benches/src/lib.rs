//! Shared helpers for anoncap's benchmarks: input generators and baselines measured in the
//! same run.
