//! Build script of `capture`: links the DAG API library when the `dag` feature is on, and does
//! nothing otherwise (the default build needs no Endace software).
//!
//! With `--features dag`, in this order:
//! 1. `ANONCAP_DAG_STANDIN=1`: compile the test stand-in `capture/dag-standin/dag-standin.c`
//!    into `libdag-standin.so` in OUT_DIR and link against it (tests only: it is not libdag);
//! 2. `DAG_LIB_DIR=/opt/dag/lib`: link `-ldag` (and `-ldagconf` when present) from that folder;
//! 3. `pkg-config --libs dag`: use what the DAG software's `dag.pc` says.
//!
//! If none applies, the build stops with a message naming what is missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_DAG").is_none() {
        return;
    }
    for var in [
        "ANONCAP_DAG_STANDIN",
        "DAG_LIB_DIR",
        "PKG_CONFIG_PATH",
        "CC",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if env::var("ANONCAP_DAG_STANDIN").is_ok_and(|v| v == "1") {
        build_standin();
    } else if let Some(dir) = env::var_os("DAG_LIB_DIR") {
        link_lib_dir(Path::new(&dir));
    } else if !link_pkg_config() {
        fail(
            "the `dag` feature links Endace's DAG API library (libdag), and none was found.\n\
             - On a host with the DAG software installed, set DAG_LIB_DIR to the folder that \
             holds libdag.so (e.g. DAG_LIB_DIR=/opt/dag/lib or /usr/local/lib), or make \
             `pkg-config --libs dag` work (PKG_CONFIG_PATH=/opt/dag/lib/pkgconfig);\n\
             - to build and test against the stand-in library instead (no card needed), set \
             ANONCAP_DAG_STANDIN=1.\n\
             See docs/dag.md.",
        );
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

fn build_standin() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let src = manifest.join("dag-standin/dag-standin.c");
    let header = manifest.join("dag-standin/dagapi-standin.h");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", header.display());
    let lib = out.join("libdag-standin.so");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args([
            "-shared", "-fPIC", "-O2", "-g", "-std=c11", "-Wall", "-Wextra",
        ])
        .arg("-Wl,-soname,libdag-standin.so")
        .arg("-I")
        .arg(manifest.join("dag-standin"))
        .arg("-o")
        .arg(&lib)
        .arg(&src)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!(
            "compiling the DAG stand-in library {} with {cc} failed ({s})",
            src.display()
        )),
        Err(e) => fail(&format!(
            "cannot run the C compiler `{cc}` to build the DAG stand-in library: {e} \
             (install gcc, or set CC)"
        )),
    }
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=dylib=dag-standin");
    // capture's own test binaries find the stand-in without LD_LIBRARY_PATH; `cargo run` and
    // `cargo test` of other packages get OUT_DIR on their library path from cargo itself.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", out.display());
    println!(
        "cargo:rustc-env=ANONCAP_DAG_LIBRARY=stand-in ({})",
        lib.display()
    );
}

fn link_lib_dir(dir: &Path) {
    let has = |stem: &str| {
        ["so", "a"]
            .iter()
            .any(|ext| dir.join(format!("lib{stem}.{ext}")).exists())
    };
    if !has("dag") {
        fail(&format!(
            "DAG_LIB_DIR={} holds no libdag.so or libdag.a: point it at the lib folder of the \
             Endace DAG software (docs/dag.md)",
            dir.display()
        ));
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dag");
    if has("dagconf") {
        println!("cargo:rustc-link-lib=dagconf");
    }
    println!(
        "cargo:rustc-env=ANONCAP_DAG_LIBRARY=libdag from {}",
        dir.display()
    );
}

fn link_pkg_config() -> bool {
    let Ok(out) = Command::new("pkg-config").args(["--libs", "dag"]).output() else {
        return false;
    };
    if !out.status.success() {
        return false;
    }
    let flags = String::from_utf8_lossy(&out.stdout);
    for flag in flags.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
        }
    }
    println!("cargo:rustc-env=ANONCAP_DAG_LIBRARY=libdag from pkg-config `dag`");
    true
}
