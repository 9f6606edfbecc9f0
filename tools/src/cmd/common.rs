//! Flags and helpers that several subcommands share: the key and policy, the output, the
//! progress bar.

use std::path::PathBuf;
use std::time::Duration;

use anonymise::key::Key;
use anonymise::policy::Policy;
use anyhow::Context;
use capture::output::{OutputConfig, RunInfo};

/// Where the addresses' mapping comes from.
#[derive(clap::Args)]
pub struct KeyArgs {
    /// Key file: 64 hex characters (or 32 raw bytes), readable by its owner only.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Anonymisation policy (see `anoncap policy --explain`).
    #[arg(long, default_value = "default", value_name = "POLICY")]
    pub policy: String,
    /// Derive the key of this dataset from the master key, so that mappings are consistent
    /// within a dataset and unlinkable across datasets.
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
    /// Entries of each thread's exact-address cache.
    #[arg(long, default_value_t = 1 << 16, value_name = "N")]
    pub cache: usize,
    /// Anonymise MAC addresses too (kept by default: backbone segments carry no end users).
    #[arg(long)]
    pub anonymise_mac: bool,
}

impl KeyArgs {
    /// Loads the key (refusing missing, malformed or readable-by-others files) and parses the
    /// policy.
    pub fn load(&self) -> anyhow::Result<(Key, Policy)> {
        let key = Key::load(&self.key)?;
        let key = match &self.dataset {
            Some(name) => key.derive_dataset(name),
            None => key,
        };
        let policy: Policy = self
            .policy
            .parse()
            .with_context(|| format!("bad --policy {:?}", self.policy))?;
        Ok((key, policy))
    }
}

/// Where and how the ERF output is written.
#[derive(clap::Args)]
pub struct OutputArgs {
    /// Output: a file ending in .erf (one file), or a directory (files rotated by size/time).
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// Rotate directory output when a file reaches this size (e.g. 100M, 1G).
    #[arg(long, default_value = "100M", value_parser = parse_size, value_name = "SIZE")]
    pub rotate_size: u64,
    /// Also rotate at this interval, aligned to the clock (e.g. 15m, 1h).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "INTERVAL")]
    pub rotate_interval: Option<Duration>,
    /// Leave out the META (provenance) records, for readers that do not know them.
    #[arg(long)]
    pub no_meta: bool,
    /// A description of the measurement for the metadata (WIDE's traffic data description).
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

impl OutputArgs {
    /// The writer's configuration for this run.
    pub fn config(&self, mut run: RunInfo) -> anyhow::Result<OutputConfig> {
        if let Some(d) = &self.description {
            run.description = Some(d.clone());
        }
        let target = super::offline::target_for(&self.out, self.rotate_size, self.rotate_interval);
        Ok(OutputConfig {
            meta: !self.no_meta,
            ..OutputConfig::new(target, run)
        })
    }
}

/// Run information every subcommand fills in the same way.
pub fn run_info() -> RunInfo {
    RunInfo {
        software_version: format!("anoncap {}", env!("CARGO_PKG_VERSION")),
        hostname: hostname(),
        ..RunInfo::default()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A progress bar on standard error that shows packets and rate; hidden when stderr is not a
/// terminal.
pub fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} packets ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar
}

/// Parses a size such as `100M`, `1G`, `64k` or `1048576` (powers of 1000, as n2disk and
/// tcpdump -C count; `Ki`/`Mi`/`Gi` for powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 100M)"))?;
    let mult: u64 = match unit.trim().trim_end_matches(['B', 'b']) {
        "" => 1,
        "k" | "K" => 1_000,
        "M" | "m" => 1_000_000,
        "G" | "g" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?}: unknown size unit (use k, M, G, Ki, Mi, Gi)"
            ))
        }
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("{text:?} is not a usable size"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100M"), Ok(100_000_000));
        assert_eq!(parse_size("64k"), Ok(64_000));
        assert_eq!(parse_size("1Gi"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
    }
}
