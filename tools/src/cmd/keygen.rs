//! `anoncap keygen`: write a new key file.
//!
//! The key is 32 bytes from the operating system's random source, written as 64 hexadecimal
//! characters and a newline to a new file of mode 0600 (an existing file is never overwritten).
//! With `--master FILE --dataset NAME` the new file holds the dataset key derived from a master
//! key instead (HKDF-SHA256), the same key that `--dataset NAME` derives at run time.

use std::path::PathBuf;
use std::process::ExitCode;

use anonymise::Key;
use anyhow::Context;

/// Flags of `anoncap keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// The key file to create (mode 0600; never overwritten).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Derive the new key from this master key file instead of drawing a random one.
    #[arg(long, value_name = "FILE", requires = "dataset")]
    pub master: Option<PathBuf>,
    /// The dataset name whose key is derived from the master key.
    #[arg(long, value_name = "NAME", requires = "master")]
    pub dataset: Option<String>,
}

/// Runs `anoncap keygen`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key = match (&args.master, &args.dataset) {
        (Some(master), Some(name)) => Key::load(master)
            .context("cannot use the master key")?
            .derive_dataset(name),
        _ => Key::generate().context("cannot make a key")?,
    };
    key.write_new(&args.output)
        .context("cannot write the key file")?;
    eprintln!(
        "anoncap keygen: wrote {} (key fingerprint {})",
        args.output.display(),
        key.fingerprint()
    );
    Ok(ExitCode::SUCCESS)
}
