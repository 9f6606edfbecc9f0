//! `anoncap addr`: anonymise addresses read one per line from standard input.
//!
//! IPv4 and IPv6 may be mixed. Each good line gives one line on standard output, the anonymised
//! address in canonical text form (RFC 5952 for IPv6). A line that is not an address is reported
//! on standard error with its line number (never its content, which may hold an address) and
//! skipped; processing goes on and the exit status is 1 at the end. Input is read and mapped in
//! batches, in constant memory.

use std::io::{BufRead, BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anonymise::{Anonymiser, Key, Policy};
use anyhow::Context;

/// Lines read and mapped per batch.
const BATCH: usize = 4096;

/// Flags of `anoncap addr`.
#[derive(clap::Args)]
pub struct Args {
    /// Key file: 64 hexadecimal characters (or 32 raw bytes), mode 0600 (`anoncap keygen`).
    #[arg(long, short = 'k', value_name = "FILE")]
    pub key: PathBuf,
    /// Anonymisation policy (`anoncap policy --explain` shows what each one does).
    #[arg(long, short = 'p', value_name = "POLICY", default_value = "default")]
    pub policy: Policy,
    /// Use the key of this dataset, derived from the key file's (master) key.
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
    /// Entries of the exact-address cache, per address family (0 disables it).
    #[arg(long, value_name = "N", default_value_t = 1 << 16)]
    pub cache: usize,
}

enum Item {
    V4,
    V6,
    Bad,
}

/// Runs `anoncap addr`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut key = Key::load(&args.key).context("cannot use the key")?;
    if let Some(name) = &args.dataset {
        key = key.derive_dataset(name);
    }
    let mut anon = Anonymiser::new(&key, &args.policy, args.cache);
    drop(key);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());

    let mut line = Vec::with_capacity(64);
    let mut items: Vec<Item> = Vec::with_capacity(BATCH);
    let mut v4: Vec<[u8; 4]> = Vec::with_capacity(BATCH);
    let mut v6: Vec<[u8; 16]> = Vec::with_capacity(BATCH);
    let mut line_no: u64 = 0;
    let mut bad: u64 = 0;
    let mut eof = false;
    while !eof {
        items.clear();
        v4.clear();
        v6.clear();
        while items.len() < BATCH {
            line.clear();
            let n = input
                .read_until(b'\n', &mut line)
                .context("cannot read standard input")?;
            if n == 0 {
                eof = true;
                break;
            }
            line_no += 1;
            match parse(&line) {
                Ok(IpAddr::V4(a)) => {
                    v4.push(a.octets());
                    items.push(Item::V4);
                }
                Ok(IpAddr::V6(a)) => {
                    v6.push(a.octets());
                    items.push(Item::V6);
                }
                Err(why) => {
                    bad += 1;
                    eprintln!("anoncap addr: line {line_no}: {why}; line skipped");
                    items.push(Item::Bad);
                }
            }
        }
        anon.map_ipv4_batch(&mut v4);
        anon.map_ipv6_batch(&mut v6);
        let (mut i4, mut i6) = (v4.iter(), v6.iter());
        for item in &items {
            match item {
                Item::V4 => {
                    let a = i4.next().expect("one IPv4 result per IPv4 line");
                    writeln!(out, "{}", std::net::Ipv4Addr::from(*a))?;
                }
                Item::V6 => {
                    let a = i6.next().expect("one IPv6 result per IPv6 line");
                    writeln!(out, "{}", std::net::Ipv6Addr::from(*a))?;
                }
                Item::Bad => {}
            }
        }
    }
    out.flush().context("cannot write standard output")?;
    if bad > 0 {
        eprintln!("anoncap addr: {bad} of {line_no} lines were not addresses");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse(line: &[u8]) -> Result<IpAddr, &'static str> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8 text")?;
    let text = text.trim();
    if text.is_empty() {
        return Err("empty line");
    }
    text.parse().map_err(|_| "not an IPv4 or IPv6 address")
}
