//! The live capture path: AF_XDP sockets, pinned threads, and the merge into one ERF output.
//!
//! - [`adapt`]: the offline frame processor and the ERF writer as live stages;
//! - [`xsk`]: one AF_XDP socket per (interface, queue), its UMEM and batch receive;
//! - [`batch`]: fixed-size batches of frames, the unit passed between threads;
//! - [`reorder`]: the timestamp merge of all sockets within a bounded window;
//! - [`program`]: the XDP program on each interface (load, XSKMAP, attach, detach);
//! - [`pipeline`]: the receive, anonymiser and writer threads, loss accounting, signals;
//! - [`netns`]: the namespaces and veth pair of the demo and the tests;
//! - [`sys`]: clocks (TAI to UTC), interface counters and queues, privileges.

pub mod adapt;
pub mod batch;
pub mod netns;
pub mod pipeline;
pub mod program;
pub mod reorder;
pub mod sys;
pub mod xsk;

#[cfg(test)]
mod tests;

/// The XDP program crate, for its options and counters.
pub use bpf;
pub use pipeline::{
    run, Control, FrameMeta, LiveSummary, MetaFormat, PipelineConfig, PipelineError, Processed,
    RecordSink, SinkError, SlotProcessor, Source, SourceSummary,
};
pub use program::{ProgramError, ProgramSetup, XdpPrograms, ANONCAP_META};
pub use xsk::{BindMode, XskConfig, XskError, XskQueue, XskStats};
