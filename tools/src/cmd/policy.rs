//! `anoncap policy`: check a policy, print its canonical form and what it does to each class.

use std::process::ExitCode;

use anonymise::policy::GROUPS;
use anonymise::Policy;

/// Flags of `anoncap policy`.
#[derive(clap::Args)]
pub struct Args {
    /// The policy (text form: BASE or BASE+CLASS=ACTION+...).
    #[arg(long, short = 'p', value_name = "POLICY", default_value = "default")]
    pub policy: Policy,
    /// Print what happens to each address class, and the group names overrides may use.
    #[arg(long)]
    pub explain: bool,
}

/// Runs `anoncap policy`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.explain {
        print!("{}", args.policy.explain());
        println!("groups (for BASE+GROUP=ACTION):");
        for (name, classes) in GROUPS {
            let names: Vec<&str> = classes.iter().map(|c| c.name()).collect();
            println!("  {name:<18} {}", names.join(" "));
        }
    } else {
        println!("{}", args.policy);
    }
    Ok(ExitCode::SUCCESS)
}
