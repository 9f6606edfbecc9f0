//! The anonymisation key: loading, generating, deriving, naming.
//!
//! A key is 32 bytes. Crypto-PAn uses it as its reference defines (the first 16 bytes are the
//! AES-128 key, the last 16 are encrypted once to give the pad), so a key file written here can
//! be used by any interoperable Crypto-PAn implementation and vice versa.
//!
//! Every other algorithm (full scrambling, ipcrypt-pfx, MAC mapping) derives its own subkey with
//! HKDF-SHA256 (RFC 5869, no salt, the 32 key bytes as input key material) and an info string
//! that names the algorithm, listed in [`info`]. A dataset key is derived from a master key and
//! a dataset name the same way, so mappings are consistent within a dataset and unlinkable
//! across datasets.
//!
//! # Key files
//! A key file holds the key as 64 hexadecimal characters, optionally followed by a newline (the
//! form `anoncap keygen` writes), or as exactly 32 raw bytes (the form libtrace's traceanon
//! reads). [`Key::load`] refuses, with a message that says what to do, a file that is missing,
//! unreadable, of another length, not hexadecimal, or readable by its group or by others.
//!
//! Key bytes never appear in `Debug` output or in errors, and are zeroised on drop.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;

/// HKDF-SHA256 info strings: one per algorithm, so that no two algorithms share a subkey.
pub mod info {
    /// Subkey of the IPv6 full scrambling (AES-128 of the 16 address bytes): 16 bytes.
    pub const SCRAMBLE_V6: &str = "anoncap/v1 scramble ipv6 aes128";
    /// Subkey of the IPv4 full scrambling (AES-128 Feistel permutation of 32 bits): 16 bytes.
    pub const SCRAMBLE_V4: &str = "anoncap/v1 scramble ipv4 feistel";
    /// Key of ipcrypt-pfx (two AES-128 keys): 32 bytes.
    pub const IPCRYPT_PFX: &str = "anoncap/v1 ipcrypt-pfx";
    /// Subkey of the MAC address mapping (AES-128 Feistel permutation of 46 bits): 16 bytes.
    pub const MAC: &str = "anoncap/v1 mac feistel";
    /// Prefix of a dataset key's info; the dataset name (UTF-8) follows it: 32 bytes.
    pub const DATASET_PREFIX: &str = "anoncap/v1 dataset ";
    /// Prefix hashed before the key to give its fingerprint (SHA-256, first 8 bytes).
    pub const FINGERPRINT_PREFIX: &str = "anoncap/v1 key fingerprint ";
}

/// Why a key could not be loaded, generated or written. Never carries key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file does not exist.
    #[error("key file {path} does not exist: create one with `anoncap keygen -o {path}`")]
    Missing {
        /// The key file.
        path: PathBuf,
    },
    /// The key file could not be opened or read.
    #[error("cannot read key file {path}: {source} (check its path and permissions)")]
    Unreadable {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file can be read by its group or by others.
    #[error(
        "key file {path} is readable by its group or others (mode {mode:03o}): \
         run `chmod 600 {path}`, and make a new key if others may have read it"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
    /// The key file has the wrong length.
    #[error(
        "key file {path} holds {len} bytes: a key is 64 hexadecimal characters (a trailing \
         newline is fine) or 32 raw bytes; make one with `anoncap keygen -o FILE`"
    )]
    Length {
        /// The key file.
        path: PathBuf,
        /// Its length in bytes (after trailing whitespace is removed, for a text file).
        len: usize,
    },
    /// The key file is 64 characters long but not hexadecimal.
    #[error(
        "key file {path} is not 64 hexadecimal characters (character {position} is not 0-9, \
         a-f or A-F); make a new key with `anoncap keygen -o FILE`"
    )]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// 1-based position of the first bad character.
        position: usize,
    },
    /// The file to write already exists.
    #[error("{path} already exists: anoncap never overwrites a key; choose another name")]
    Exists {
        /// The file that exists.
        path: PathBuf,
    },
    /// The new key file could not be written.
    #[error("cannot write key file {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// A 32-byte anonymisation key. `Debug` shows only its fingerprint; the bytes are zeroised on
/// drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    bytes: [u8; KEY_LEN],
}

impl Drop for Key {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key from its 32 bytes (for tests, vectors and callers that hold the key elsewhere).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key { bytes }
    }

    /// A key from 64 hexadecimal characters. `None` if the text is not exactly that.
    pub fn from_hex(text: &str) -> Option<Key> {
        let mut key = Key {
            bytes: [0u8; KEY_LEN],
        };
        hex::decode_to_slice(text.as_bytes(), &mut key.bytes).ok()?;
        Some(key)
    }

    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Key, KeyError> {
        let mut key = Key {
            bytes: [0u8; KEY_LEN],
        };
        getrandom::fill(&mut key.bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(key)
    }

    /// The key bytes. Use them only to build ciphers; never print or log them.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// Loads a key file (64 hex characters with an optional trailing newline, or 32 raw
    /// bytes), refusing a missing, unreadable, malformed, short or long file and one that its
    /// group or others may read.
    pub fn load(path: &Path) -> Result<Key, KeyError> {
        let owned = || path.to_path_buf();
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing { path: owned() })
            }
            Err(source) => {
                return Err(KeyError::Unreadable {
                    path: owned(),
                    source,
                })
            }
        };
        let meta = file.metadata().map_err(|source| KeyError::Unreadable {
            path: owned(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: owned(),
                mode,
            });
        }
        // Read at most a little more than the longest valid file, so a huge file is refused
        // without being read whole.
        let mut buf = Zeroizing::new(Vec::with_capacity(80));
        (&mut file)
            .take(256)
            .read_to_end(&mut buf)
            .map_err(|source| KeyError::Unreadable {
                path: owned(),
                source,
            })?;
        let mut key = Key {
            bytes: [0u8; KEY_LEN],
        };
        if buf.len() == KEY_LEN {
            key.bytes.copy_from_slice(&buf);
            return Ok(key);
        }
        let mut text: &[u8] = &buf;
        while let Some((last, rest)) = text.split_last() {
            if last.is_ascii_whitespace() {
                text = rest;
            } else {
                break;
            }
        }
        if text.len() != 2 * KEY_LEN {
            let len = if meta.len() > buf.len() as u64 {
                meta.len() as usize
            } else {
                text.len()
            };
            return Err(KeyError::Length { path: owned(), len });
        }
        if let Some(pos) = text.iter().position(|c| !c.is_ascii_hexdigit()) {
            return Err(KeyError::Malformed {
                path: owned(),
                position: pos + 1,
            });
        }
        hex::decode_to_slice(text, &mut key.bytes).map_err(|_| KeyError::Malformed {
            path: owned(),
            position: 1,
        })?;
        Ok(key)
    }

    /// Writes the key to a new file as 64 hex characters and a newline, with mode 0600.
    /// Refuses to overwrite an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyError::Exists {
                        path: path.to_path_buf(),
                    }
                } else {
                    KeyError::Write {
                        path: path.to_path_buf(),
                        source,
                    }
                }
            })?;
        let werr = |source| {
            // Leave no partial key behind.
            let _ = std::fs::remove_file(path);
            KeyError::Write {
                path: path.to_path_buf(),
                source,
            }
        };
        // The umask may not clear group/other bits the way 0600 asks; make sure.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(werr)?;
        let mut text = Zeroizing::new([0u8; 2 * KEY_LEN + 1]);
        hex::encode_to_slice(self.bytes, &mut text[..2 * KEY_LEN])
            .expect("64 bytes hold the hex of 32");
        text[2 * KEY_LEN] = b'\n';
        file.write_all(&text[..]).map_err(werr)?;
        file.sync_all().map_err(werr)?;
        Ok(())
    }

    /// A short name of the key for metadata: the first 8 bytes (16 hex characters) of
    /// SHA-256 over [`info::FINGERPRINT_PREFIX`] and the key. It does not reveal the key.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(info::FINGERPRINT_PREFIX.as_bytes());
        h.update(self.bytes);
        let digest = h.finalize();
        hex::encode(&digest[..8])
    }

    /// The key of a dataset: HKDF-SHA256 of this (master) key with the info
    /// [`info::DATASET_PREFIX`] followed by the dataset name. Addresses map consistently within
    /// one dataset and unlinkably across datasets.
    pub fn derive_dataset(&self, name: &str) -> Key {
        let mut info = Vec::with_capacity(info::DATASET_PREFIX.len() + name.len());
        info.extend_from_slice(info::DATASET_PREFIX.as_bytes());
        info.extend_from_slice(name.as_bytes());
        let mut key = Key {
            bytes: [0u8; KEY_LEN],
        };
        self.expand(&info, &mut key.bytes);
        key
    }

    /// A subkey of `N` bytes for one algorithm: HKDF-SHA256 with `info` (see [`info`]).
    pub fn derive_subkey<const N: usize>(&self, info: &str) -> Zeroizing<[u8; N]> {
        let mut out = Zeroizing::new([0u8; N]);
        self.expand(info.as_bytes(), &mut out[..]);
        out
    }

    fn expand(&self, info: &[u8], out: &mut [u8]) {
        let hk = Hkdf::<Sha256>::new(None, &self.bytes);
        hk.expand(info, out)
            .expect("HKDF-SHA256 gives up to 8160 bytes; callers ask for at most 32");
    }
}
