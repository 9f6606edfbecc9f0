//! One module per subcommand: its flags (`Args`) and its `run`.

pub mod addr;
#[cfg(feature = "live")]
pub mod capture;
pub mod common;
pub mod convert;
#[cfg(feature = "dag")]
pub mod dag;
#[cfg(feature = "live")]
pub mod demo;
pub mod keygen;
pub mod offline;
pub mod policy;
pub mod stats;
