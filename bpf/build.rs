//! Compiles the XDP program objects with clang (through libbpf-cargo's SkeletonBuilder) and
//! generates their skeletons into OUT_DIR.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// The program objects: (source, object and skeleton name).
const OBJECTS: [(&str, &str); 3] = [
    ("src/bpf/anoncap.bpf.c", "anoncap"),
    ("src/bpf/anoncap_devbound.bpf.c", "anoncap_devbound"),
    // The traffic sender's XDP_TX program and its test sink (bpf::sender).
    ("src/bpf/sender.bpf.c", "sender"),
];

/// Headers both objects include.
const HEADERS: [&str; 2] = ["src/bpf/anoncap.h", "src/bpf/meta.h"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Debian keeps asm/types.h under the multiarch directory, which clang does not search
    // for -target bpf.
    let mut clang_args = vec!["-Wall".to_string(), "-Werror".to_string()];
    let multiarch = PathBuf::from("/usr/include/x86_64-linux-gnu");
    if multiarch.is_dir() {
        clang_args.push(format!("-I{}", multiarch.display()));
    }
    for (src, name) in OBJECTS {
        let obj = out.join(format!("{name}.bpf.o"));
        let skel = out.join(format!("{name}.skel.rs"));
        if let Err(e) = SkeletonBuilder::new()
            .source(src)
            .obj(&obj)
            .clang_args(&clang_args)
            .build_and_generate(&skel)
        {
            panic!("building the XDP program {src} failed: {e:#}");
        }
        println!("cargo:rerun-if-changed={src}");
    }
    for h in HEADERS {
        println!("cargo:rerun-if-changed={h}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
