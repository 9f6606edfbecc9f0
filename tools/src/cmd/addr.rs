//! `anoncap addr`: anonymise addresses read one per line from standard input.
//!
//! IPv4 and IPv6 may be mixed. Each good line gives one line on standard output, the anonymised
//! address in canonical text form (RFC 5952 for IPv6). A line that is not an address is reported
//! on standard error with its line number (never its content, which may hold an address) and
//! skipped; processing goes on and the exit status is 1 at the end. Input is read and mapped in
//! batches, in constant memory (a line longer than 256 bytes is a bad line, read to its end
//! without being stored).

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
            let Some(too_long) =
                read_line_capped(&mut input, &mut line).context("cannot read standard input")?
            else {
                eof = true;
                break;
            };
            line_no += 1;
            let parsed = if too_long {
                Err("line too long for an address")
            } else {
                parse(&line)
            };
            match parsed {
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

/// Longest line kept: an address with surrounding whitespace is far shorter. Longer lines are
/// read to their end without being stored, so memory stays constant.
const MAX_LINE: usize = 256;

/// Reads one line (without its newline) into `line`, keeping at most [`MAX_LINE`] bytes.
/// `None` at the end of input, else whether the line was longer than that.
fn read_line_capped(input: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut seen = false;
    let mut too_long = false;
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(seen.then_some(too_long));
        }
        seen = true;
        let (chunk, used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        if chunk.len() > room {
            too_long = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        input.consume(used);
        if done {
            return Ok(Some(too_long));
        }
    }
}

fn parse(line: &[u8]) -> Result<IpAddr, &'static str> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8 text")?;
    let text = text.trim();
    if text.is_empty() {
        return Err("empty line");
    }
    text.parse().map_err(|_| "not an IPv4 or IPv6 address")
}
