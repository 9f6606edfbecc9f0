//! The live capture path: AF_XDP sockets, pinned threads, and the merge into one ERF output.
//!
//! - [`xsk`]: one AF_XDP socket per (interface, queue), its UMEM and batch receive;
//! - [`batch`]: fixed-size batches of frames, the unit passed between threads;
//! - [`reorder`]: the timestamp merge of all sockets within a bounded window;
//! - [`pipeline`]: the receive, anonymiser and writer threads, loss accounting, signals;
//! - [`sys`]: clocks (TAI to UTC), interface counters and queues, privileges.

pub mod batch;
pub mod pipeline;
pub mod reorder;
pub mod sys;
pub mod xsk;

pub use pipeline::{
    run, Control, FrameProcessor, LiveSummary, MetaFormat, PipelineConfig, PipelineError,
    RecordSink, SinkError, Source, SourceSummary,
};
pub use xsk::{BindMode, XskConfig, XskError, XskQueue, XskStats};
