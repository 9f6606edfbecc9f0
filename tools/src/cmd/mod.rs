//! One module per subcommand: its flags (`Args`) and its `run`.

pub mod addr;
pub mod convert;
pub mod keygen;
pub mod offline;
pub mod policy;
pub mod stats;
