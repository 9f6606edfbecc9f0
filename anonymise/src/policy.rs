//! Anonymisation policies: which algorithm runs on which address class.
//!
//! # Text form
//! A policy is written `BASE` or `BASE+CLASS=ACTION+CLASS=ACTION...` (spaces around `+` and `=`
//! are allowed). It is the same on the command line (`--policy`) and in configuration files;
//! [`Policy`]'s `Display` gives the canonical form, which parses back to the same policy.
//!
//! Bases:
//! - `cryptopan`: Crypto-PAn on every address; no class is kept. This is what the published
//!   Crypto-PAn vectors test.
//! - `default`: Crypto-PAn, except the classes that identify no user, which are kept: IPv4
//!   multicast 224.0.0.0/4, 255.255.255.255, 0.0.0.0, `::` and IPv6 multicast ff00::/8 other
//!   than solicited-node ff02::1:ff00:0/104 (whose low 24 bits come from a unicast address).
//!   IPv6 link-local, solicited-node, loopback and private ranges are anonymised.
//! - `truncate:V4BITS,V6BITS`: keep the first V4BITS of IPv4 and V6BITS of IPv6 addresses and zero
//!   the rest (Internet2 uses `truncate:21,48`); the classes `default` keeps are kept.
//! - `scramble`: full scrambling, no prefix kept; IPv4 stays IPv4 (a keyed Feistel permutation of
//!   32 bits) and IPv6 stays IPv6 (AES-128 of the 16 bytes, the ipcrypt-deterministic
//!   primitive); the classes `default` keeps are kept.
//! - `ipcrypt-pfx`: the prefix-preserving method of draft-denis-ipcrypt; the classes `default`
//!   keeps are kept.
//!
//! Actions: `keep`, `cryptopan`, `scramble`, `ipcrypt-pfx`, `zero` (all bits zeroed, the same as
//! `truncate:0`), `truncate:N` (keep the first N bits: N ≤ 32 for an IPv4 class, ≤ 128 for an
//! IPv6 class) and `truncate:V4BITS,V6BITS` (for a group holding both families).
//!
//! Classes (and groups of classes) are listed by [`Class::ALL`] and [`GROUPS`]; for example
//! `default+private=keep` keeps RFC 1918 and IPv6 unique-local addresses, and
//! `scramble+non-identifying=scramble` scrambles every address.

use std::fmt;
use std::str::FromStr;

/// An address class: every address belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Class {
    /// 0.0.0.0
    V4Unspecified,
    /// 255.255.255.255
    V4Broadcast,
    /// 224.0.0.0/4
    V4Multicast,
    /// 127.0.0.0/8
    V4Loopback,
    /// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918)
    V4Private,
    /// 169.254.0.0/16
    V4LinkLocal,
    /// Every other IPv4 address.
    V4Unicast,
    /// ::
    V6Unspecified,
    /// ::1
    V6Loopback,
    /// ff02::1:ff00:0/104
    V6SolicitedNode,
    /// ff00::/8 except solicited-node
    V6Multicast,
    /// fe80::/10
    V6LinkLocal,
    /// fc00::/7 (unique local, the IPv6 private range)
    V6UniqueLocal,
    /// Every other IPv6 address (IPv4-mapped ::ffff:0:0/96 included).
    V6Unicast,
}

/// Number of classes.
pub const CLASS_COUNT: usize = 14;

impl Class {
    /// Every class, in canonical order.
    pub const ALL: [Class; CLASS_COUNT] = [
        Class::V4Unspecified,
        Class::V4Broadcast,
        Class::V4Multicast,
        Class::V4Loopback,
        Class::V4Private,
        Class::V4LinkLocal,
        Class::V4Unicast,
        Class::V6Unspecified,
        Class::V6Loopback,
        Class::V6SolicitedNode,
        Class::V6Multicast,
        Class::V6LinkLocal,
        Class::V6UniqueLocal,
        Class::V6Unicast,
    ];

    /// The name used in the text form.
    pub fn name(self) -> &'static str {
        match self {
            Class::V4Unspecified => "v4-unspecified",
            Class::V4Broadcast => "v4-broadcast",
            Class::V4Multicast => "v4-multicast",
            Class::V4Loopback => "v4-loopback",
            Class::V4Private => "v4-private",
            Class::V4LinkLocal => "v4-link-local",
            Class::V4Unicast => "v4-unicast",
            Class::V6Unspecified => "v6-unspecified",
            Class::V6Loopback => "v6-loopback",
            Class::V6SolicitedNode => "v6-solicited-node",
            Class::V6Multicast => "v6-multicast",
            Class::V6LinkLocal => "v6-link-local",
            Class::V6UniqueLocal => "v6-unique-local",
            Class::V6Unicast => "v6-unicast",
        }
    }

    /// The ranges the class covers, for `--explain`.
    pub fn ranges(self) -> &'static str {
        match self {
            Class::V4Unspecified => "0.0.0.0",
            Class::V4Broadcast => "255.255.255.255",
            Class::V4Multicast => "224.0.0.0/4",
            Class::V4Loopback => "127.0.0.0/8",
            Class::V4Private => "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16",
            Class::V4LinkLocal => "169.254.0.0/16",
            Class::V4Unicast => "every other IPv4 address",
            Class::V6Unspecified => "::",
            Class::V6Loopback => "::1",
            Class::V6SolicitedNode => "ff02::1:ff00:0/104",
            Class::V6Multicast => "ff00::/8 except solicited-node",
            Class::V6LinkLocal => "fe80::/10",
            Class::V6UniqueLocal => "fc00::/7",
            Class::V6Unicast => "every other IPv6 address (IPv4-mapped included)",
        }
    }

    /// Whether the class holds IPv6 addresses.
    pub fn is_v6(self) -> bool {
        self >= Class::V6Unspecified
    }

    /// Address width of the class in bits (32 or 128).
    pub fn bits(self) -> u8 {
        if self.is_v6() {
            128
        } else {
            32
        }
    }

    /// The classes `default` keeps: they identify no user.
    pub fn identifies_no_user(self) -> bool {
        matches!(
            self,
            Class::V4Unspecified
                | Class::V4Broadcast
                | Class::V4Multicast
                | Class::V6Unspecified
                | Class::V6Multicast
        )
    }

    /// The class of an IPv4 address (host-order `u32` of the wire bytes).
    #[inline]
    pub fn of_ipv4(a: u32) -> Class {
        match a {
            0 => Class::V4Unspecified,
            0xffff_ffff => Class::V4Broadcast,
            _ if a >> 28 == 0xe => Class::V4Multicast,
            _ if a >> 24 == 127 => Class::V4Loopback,
            _ if a >> 24 == 10 || a >> 20 == 0xac1 || a >> 16 == 0xc0a8 => Class::V4Private,
            _ if a >> 16 == 0xa9fe => Class::V4LinkLocal,
            _ => Class::V4Unicast,
        }
    }

    /// The class of an IPv6 address (host-order `u128` of the wire bytes).
    #[inline]
    pub fn of_ipv6(a: u128) -> Class {
        match a {
            0 => Class::V6Unspecified,
            1 => Class::V6Loopback,
            _ if a >> 24 == 0xff02_0000_0000_0000_0000_0001_ff00_0000 >> 24 => {
                Class::V6SolicitedNode
            }
            _ if a >> 120 == 0xff => Class::V6Multicast,
            _ if a >> 118 == 0xfe80 >> 6 => Class::V6LinkLocal,
            _ if a >> 121 == 0xfc >> 1 => Class::V6UniqueLocal,
            _ => Class::V6Unicast,
        }
    }
}

/// Named groups of classes accepted on the left of `=`, besides the class names.
pub const GROUPS: &[(&str, &[Class])] = &[
    ("all", &Class::ALL),
    (
        "v4",
        &[
            Class::V4Unspecified,
            Class::V4Broadcast,
            Class::V4Multicast,
            Class::V4Loopback,
            Class::V4Private,
            Class::V4LinkLocal,
            Class::V4Unicast,
        ],
    ),
    (
        "v6",
        &[
            Class::V6Unspecified,
            Class::V6Loopback,
            Class::V6SolicitedNode,
            Class::V6Multicast,
            Class::V6LinkLocal,
            Class::V6UniqueLocal,
            Class::V6Unicast,
        ],
    ),
    ("unspecified", &[Class::V4Unspecified, Class::V6Unspecified]),
    ("broadcast", &[Class::V4Broadcast]),
    ("multicast", &[Class::V4Multicast, Class::V6Multicast]),
    ("loopback", &[Class::V4Loopback, Class::V6Loopback]),
    ("private", &[Class::V4Private, Class::V6UniqueLocal]),
    ("link-local", &[Class::V4LinkLocal, Class::V6LinkLocal]),
    ("unicast", &[Class::V4Unicast, Class::V6Unicast]),
    (
        "non-identifying",
        &[
            Class::V4Unspecified,
            Class::V4Broadcast,
            Class::V4Multicast,
            Class::V6Unspecified,
            Class::V6Multicast,
        ],
    ),
];

/// What happens to an address of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Written unchanged.
    Keep,
    /// Crypto-PAn (prefix-preserving).
    CryptoPan,
    /// The first N bits are kept, the others zeroed.
    Truncate(u8),
    /// Full scrambling (no prefix kept): Feistel permutation for IPv4, AES-128 for IPv6.
    Scramble,
    /// ipcrypt-pfx (prefix-preserving, draft-denis-ipcrypt).
    IpcryptPfx,
}

impl Action {
    fn text(self, bits: u8) -> String {
        match self {
            Action::Keep => "keep".into(),
            Action::CryptoPan => "cryptopan".into(),
            Action::Truncate(0) => "zero".into(),
            Action::Truncate(n) if n >= bits => "keep".into(),
            Action::Truncate(n) => format!("truncate:{n}"),
            Action::Scramble => "scramble".into(),
            Action::IpcryptPfx => "ipcrypt-pfx".into(),
        }
    }

    fn describe(self, bits: u8) -> String {
        match self {
            Action::Keep => "kept as is".into(),
            Action::CryptoPan => "Crypto-PAn (prefix-preserving)".into(),
            Action::Truncate(0) => "zeroed".into(),
            Action::Truncate(n) => {
                format!("first {n} bits kept, last {} zeroed", bits - n)
            }
            Action::Scramble if bits == 32 => {
                "scrambled (keyed 32-bit permutation, no prefix kept)".into()
            }
            Action::Scramble => "scrambled (AES-128 of the 16 bytes, no prefix kept)".into(),
            Action::IpcryptPfx => "ipcrypt-pfx (prefix-preserving)".into(),
        }
    }
}

/// The base of a policy: the algorithm and the classes it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base {
    /// Crypto-PAn everywhere.
    CryptoPan,
    /// Crypto-PAn, the classes that identify no user kept.
    Default,
    /// Prefix truncation (IPv4 bits, IPv6 bits kept).
    Truncate(u8, u8),
    /// Full scrambling.
    Scramble,
    /// ipcrypt-pfx.
    IpcryptPfx,
}

impl Base {
    /// The action of the base on a class, before any override.
    pub fn action(self, class: Class) -> Action {
        let main = match self {
            Base::CryptoPan => return Action::CryptoPan,
            Base::Default => Action::CryptoPan,
            Base::Truncate(v4, v6) => Action::Truncate(if class.is_v6() { v6 } else { v4 }),
            Base::Scramble => Action::Scramble,
            Base::IpcryptPfx => Action::IpcryptPfx,
        };
        if class.identifies_no_user() {
            Action::Keep
        } else {
            main
        }
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base::CryptoPan => f.write_str("cryptopan"),
            Base::Default => f.write_str("default"),
            Base::Truncate(a, b) => write!(f, "truncate:{a},{b}"),
            Base::Scramble => f.write_str("scramble"),
            Base::IpcryptPfx => f.write_str("ipcrypt-pfx"),
        }
    }
}

/// A policy that could not be parsed. The message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad policy {text:?}: {reason}")]
pub struct PolicyError {
    text: String,
    reason: String,
}

impl PolicyError {
    fn new(text: &str, reason: impl Into<String>) -> PolicyError {
        PolicyError {
            text: text.to_string(),
            reason: reason.into(),
        }
    }
}

/// An anonymisation policy: a base and per-class overrides. See the module documentation for
/// its text form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    base: Base,
    actions: [Action; CLASS_COUNT],
}

impl Default for Policy {
    fn default() -> Self {
        Policy::from_base(Base::Default)
    }
}

impl Policy {
    /// The policy of a base with no override.
    pub fn from_base(base: Base) -> Policy {
        let mut actions = [Action::Keep; CLASS_COUNT];
        for c in Class::ALL {
            actions[c as usize] = normalise(c, base.action(c));
        }
        Policy { base, actions }
    }

    /// Crypto-PAn on every address (the `cryptopan` policy).
    pub fn cryptopan() -> Policy {
        Policy::from_base(Base::CryptoPan)
    }

    /// The base.
    pub fn base(&self) -> Base {
        self.base
    }

    /// The action applied to a class.
    #[inline]
    pub fn action(&self, class: Class) -> Action {
        self.actions[class as usize]
    }

    /// Sets the action of one class (truncation lengths above the class's width mean keep).
    pub fn set(&mut self, class: Class, action: Action) {
        self.actions[class as usize] = normalise(class, action);
    }

    /// Whether any class uses `action` (for example, to decide what to prepare).
    pub fn uses(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }

    /// Whether any class uses Crypto-PAn.
    pub fn uses_cryptopan(&self) -> bool {
        self.uses(Action::CryptoPan)
    }

    /// Every class with its action, in canonical order.
    pub fn rules(&self) -> Vec<(Class, Action)> {
        Class::ALL.iter().map(|&c| (c, self.action(c))).collect()
    }

    /// A table of what happens to each class, one line per class.
    pub fn explain(&self) -> String {
        let mut out = format!("policy {self}\n");
        for (c, a) in self.rules() {
            out.push_str(&format!(
                "  {:<18} {:<48} {}\n",
                c.name(),
                c.ranges(),
                a.describe(c.bits())
            ));
        }
        out
    }
}

fn normalise(class: Class, action: Action) -> Action {
    match action {
        Action::Truncate(n) if n >= class.bits() => Action::Keep,
        a => a,
    }
}

fn parse_bits(text: &str, s: &str, max: u8) -> Result<u8, PolicyError> {
    let n: u8 = s.trim().parse().map_err(|_| {
        PolicyError::new(text, format!("{s:?} is not a number of bits (0 to {max})"))
    })?;
    if n > max {
        return Err(PolicyError::new(
            text,
            format!("{n} bits is more than the {max} an address has"),
        ));
    }
    Ok(n)
}

fn parse_truncate(text: &str, args: &str) -> Result<(u8, u8), PolicyError> {
    match args.split_once(',') {
        Some((a, b)) => Ok((parse_bits(text, a, 32)?, parse_bits(text, b, 128)?)),
        None => {
            let n = parse_bits(text, args, 128)?;
            Ok((n, n))
        }
    }
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Policy, PolicyError> {
        let mut parts = text.split('+');
        let base_text = parts.next().unwrap_or("").trim();
        let base = match base_text {
            "cryptopan" => Base::CryptoPan,
            "default" => Base::Default,
            "scramble" => Base::Scramble,
            "ipcrypt-pfx" => Base::IpcryptPfx,
            t if t.starts_with("truncate:") => {
                let args = &t["truncate:".len()..];
                let (a, b) = args.split_once(',').ok_or_else(|| {
                    PolicyError::new(
                        text,
                        "the base truncate takes two lengths, truncate:V4BITS,V6BITS \
                         (for example truncate:21,48)",
                    )
                })?;
                Base::Truncate(parse_bits(text, a, 32)?, parse_bits(text, b, 128)?)
            }
            "" => return Err(PolicyError::new(text, "empty policy; try `default`")),
            other => {
                return Err(PolicyError::new(
                    text,
                    format!(
                        "unknown base {other:?}: expected cryptopan, default, \
                         truncate:V4BITS,V6BITS, scramble or ipcrypt-pfx"
                    ),
                ))
            }
        };
        let mut policy = Policy::from_base(base);
        for part in parts {
            let (lhs, rhs) = part.split_once('=').ok_or_else(|| {
                PolicyError::new(
                    text,
                    format!("override {:?} is not CLASS=ACTION", part.trim()),
                )
            })?;
            let lhs = lhs.trim();
            let rhs = rhs.trim();
            let single;
            let classes: &[Class] = match Class::ALL.iter().find(|c| c.name() == lhs) {
                Some(c) => {
                    single = [*c];
                    &single
                }
                None => GROUPS
                    .iter()
                    .find(|(n, _)| *n == lhs)
                    .map(|(_, cs)| *cs)
                    .ok_or_else(|| {
                        PolicyError::new(
                            text,
                            format!(
                                "unknown class {lhs:?}; classes: {}; groups: {}",
                                Class::ALL.map(|c| c.name()).join(", "),
                                GROUPS.iter().map(|g| g.0).collect::<Vec<_>>().join(", ")
                            ),
                        )
                    })?,
            };
            let (v4, v6): (Action, Action) = match rhs {
                "keep" => (Action::Keep, Action::Keep),
                "cryptopan" => (Action::CryptoPan, Action::CryptoPan),
                "scramble" => (Action::Scramble, Action::Scramble),
                "ipcrypt-pfx" => (Action::IpcryptPfx, Action::IpcryptPfx),
                "zero" => (Action::Truncate(0), Action::Truncate(0)),
                t if t.starts_with("truncate:") => {
                    let args = &t["truncate:".len()..];
                    let (a, b) = parse_truncate(text, args)?;
                    if !args.contains(',') && a > 32 && classes.iter().any(|c| !c.is_v6()) {
                        return Err(PolicyError::new(
                            text,
                            format!(
                                "truncate:{a} is longer than an IPv4 address but {lhs} holds \
                                 IPv4 addresses; write truncate:V4BITS,V6BITS"
                            ),
                        ));
                    }
                    (Action::Truncate(a), Action::Truncate(b))
                }
                other => {
                    return Err(PolicyError::new(
                        text,
                        format!(
                            "unknown action {other:?}: expected keep, cryptopan, scramble, \
                             ipcrypt-pfx, zero, truncate:N or truncate:V4BITS,V6BITS"
                        ),
                    ))
                }
            };
            for &c in classes {
                policy.set(c, if c.is_v6() { v6 } else { v4 });
            }
        }
        Ok(policy)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.base)?;
        for c in Class::ALL {
            let a = self.action(c);
            if a != normalise(c, self.base.action(c)) {
                write!(f, "+{}={}", c.name(), a.text(c.bits()))?;
            }
        }
        Ok(())
    }
}
