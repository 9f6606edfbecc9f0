//! BPF_PROG_RUN over crafted frames (runs as root, as CI does): the program loads through
//! the verifier, passes frames of queues without a socket, and in test mode cuts frames no
//! shorter than an independent Rust reference of the header length.

use bpf::{action, flags, ProgramOptions, XdpProgram};

fn load_test() -> XdpProgram {
    XdpProgram::load(&ProgramOptions {
        test_mode: true,
        ..ProgramOptions::default()
    })
    .expect("test-mode program loads through the verifier")
}

fn eth(ethertype: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn ipv4(proto: u8, ihl: u8, payload_len: usize) -> Vec<u8> {
    let tot = ihl as usize * 4 + payload_len;
    let mut h = vec![
        0x40 | ihl,
        0,
        (tot >> 8) as u8,
        tot as u8,
        0,
        0,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ];
    h.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    h.resize(ihl.max(5) as usize * 4, 1); // options: NOPs
    h
}

fn tcp(doff: u8) -> Vec<u8> {
    let mut h = vec![
        0x30,
        0x39,
        0,
        80,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        doff << 4,
        0x18,
        0xff,
        0xff,
    ];
    h.extend_from_slice(&[0, 0, 0, 0]);
    h.resize(doff.max(5) as usize * 4, 1);
    h
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 8, 0, 0]);
    h
}

/// Independent reference: the header length the offline rules keep for the simple stacks
/// built here (Ethernet, VLAN tags, IPv4 with options or IPv6 with extension headers, TCP or
/// UDP), or None where the kernel must not cut exactly.
fn reference_hdr_len(f: &[u8]) -> Option<usize> {
    let mut off = 12;
    let mut et = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    off += 2;
    let mut tags = 0;
    while et == 0x8100 || et == 0x88a8 || et == 0x9100 {
        tags += 1;
        et = u16::from_be_bytes([*f.get(off + 2)?, *f.get(off + 3)?]);
        off += 4;
    }
    if tags > 4 {
        return None;
    }
    let l4 = match et {
        0x0800 => {
            let ihl = (*f.get(off)? & 0xf) as usize;
            if ihl < 5 || f.len() < off + ihl * 4 {
                return None;
            }
            let p = f[off + 9];
            off += ihl * 4;
            p
        }
        0x86dd => {
            let mut nh = *f.get(off + 6)?;
            off += 40;
            let mut n = 0;
            while matches!(nh, 0 | 43 | 60) {
                n += 1;
                let len = (*f.get(off + 1)? as usize + 1) * 8;
                nh = *f.get(off)?;
                off += len;
            }
            if n > 8 {
                return None;
            }
            nh
        }
        _ => return None,
    };
    match l4 {
        6 => {
            let doff = (*f.get(off + 12)? >> 4) as usize;
            (doff >= 5 && f.len() >= off + doff * 4).then_some(off + doff * 4)
        }
        17 => {
            let sport = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
            let dport = u16::from_be_bytes([*f.get(off + 2)?, *f.get(off + 3)?]);
            let tunnel = bpf::DEFAULT_REPARSE_UDP_PORTS
                .iter()
                .any(|&t| t == sport || t == dport);
            (!tunnel && f.len() >= off + 8).then_some(off + 8)
        }
        _ => None,
    }
}

fn frame(parts: &[&[u8]], payload: usize) -> Vec<u8> {
    let mut f: Vec<u8> = parts.concat();
    f.extend(std::iter::repeat_n(0xAB, payload));
    f
}

/// Runs the program and checks the cut against the reference.
fn check(p: &XdpProgram, f: &[u8]) -> bpf::TestRunOutput {
    let out = p.test_run(f).expect("BPF_PROG_RUN");
    assert_eq!(
        out.action,
        action::TX,
        "test mode returns XDP_TX where it redirects"
    );
    let meta = out.meta.expect("metadata block written");
    assert_eq!(meta.wire_len as usize, f.len());
    assert_eq!(meta.hdr_len as usize, out.frame.len());
    assert_eq!(
        &f[..out.frame.len()],
        &out.frame[..],
        "kept bytes are the frame's prefix"
    );
    match reference_hdr_len(f) {
        Some(h) => {
            assert_eq!(
                out.frame.len(),
                h,
                "exact cut at the end of the headers: {f:02x?}"
            );
            assert_eq!(meta.flags & flags::REPARSE, 0);
        }
        None => {
            assert_ne!(meta.flags & flags::REPARSE, 0, "frame {f:02x?}");
            assert_eq!(out.frame.len(), f.len().min(256));
        }
    }
    assert_eq!(
        meta.flags & flags::TRUNCATED != 0,
        out.frame.len() < f.len(),
        "TRUNCATED flag"
    );
    out
}

#[test]
fn no_socket_passes_untouched() {
    let p = XdpProgram::load(&ProgramOptions::default()).expect("program loads");
    let f = frame(&[&eth(0x0800), &ipv4(6, 5, 1000), &tcp(5)], 1000);
    let out = p.test_run(&f).expect("BPF_PROG_RUN");
    assert_eq!(out.action, action::PASS);
    assert_eq!(out.frame, f);
    assert!(out.meta.is_none());
    let c = p.counters().expect("counters");
    assert_eq!(c.pass_no_socket, 1);
    assert_eq!(c.seen, 0);
    assert_eq!(c.passed(), 1);
}

#[test]
fn devbound_object_loads_generic_does_not_need_it() {
    // The device-bound object needs an interface; tests/attach.rs loads it on a veth.
    assert!(bpf::DEVBOUND_OBJECT.len() > 100);
    assert!(std::path::Path::new(bpf::OBJECT_PATH).exists());
}

#[test]
fn well_formed_stacks_cut_exactly() {
    let p = load_test();
    let cases = [
        frame(&[&eth(0x0800), &ipv4(6, 5, 1400), &tcp(5)], 1400),
        frame(&[&eth(0x0800), &ipv4(6, 15, 100), &tcp(15)], 100),
        frame(&[&eth(0x0800), &ipv4(17, 6, 500), &udp(5353, 53)], 500),
        frame(
            &[
                &eth(0x8100),
                &[0, 10, 0x08, 0x00],
                &ipv4(17, 5, 64),
                &udp(1, 2),
            ],
            64,
        ),
        frame(
            &[
                &eth(0x88a8),
                &[0, 20, 0x81, 0x00],
                &[0, 10, 0x08, 0x00],
                &ipv4(6, 5, 64),
                &tcp(8),
            ],
            64,
        ),
    ];
    for f in &cases {
        let out = check(&p, f);
        assert!(out.frame.len() < f.len());
    }
    let c = p.counters().expect("counters");
    assert_eq!(c.seen, cases.len() as u64);
    assert_eq!(c.truncated, cases.len() as u64);
    assert_eq!(c.unparsed, 0);
}

#[test]
fn ipv6_extension_chains() {
    let p = load_test();
    let ip6 = |nh: u8| {
        let mut h = vec![0x60, 0, 0, 0, 0, 0, nh, 64];
        h.extend_from_slice(&[0x20, 1, 0xd, 0xb8]);
        h.resize(40, 7);
        h
    };
    for n in 0..12usize {
        let mut parts: Vec<Vec<u8>> = vec![eth(0x86dd), ip6(if n == 0 { 6 } else { 60 })];
        for i in 0..n {
            let next = if i + 1 == n { 6 } else { 60 };
            parts.push(vec![next, 0, 1, 4, 0, 0, 0, 0]);
        }
        parts.push(tcp(5));
        let refs: Vec<&[u8]> = parts.iter().map(|v| v.as_slice()).collect();
        let f = frame(&refs, 300);
        let out = check(&p, &f);
        if n > 8 {
            assert_ne!(out.meta.expect("meta").flags & flags::REPARSE, 0);
        }
    }
    // A chain that loops on itself (hop-by-hop claiming hop-by-hop) until the frame ends.
    let mut f = frame(&[&eth(0x86dd), &ip6(0)], 0);
    for _ in 0..40 {
        f.extend_from_slice(&[0, 0, 1, 4, 0, 0, 0, 0]);
    }
    check(&p, &f);
}

#[test]
fn malformed_and_truncated_frames_keep_the_snap() {
    let p = load_test();
    // Bad IHL: below 5, and beyond the frame.
    for ihl in [0u8, 1, 4] {
        let mut ip = ipv4(6, 5, 40);
        ip[0] = 0x40 | ihl;
        check(&p, &frame(&[&eth(0x0800), &ip, &tcp(5)], 400));
    }
    let mut ip = ipv4(6, 5, 0);
    ip[0] = 0x4f; // IHL 15 = 60 bytes, frame ends after 20
    check(&p, &frame(&[&eth(0x0800), &ip], 0));
    // Zero-length IPv4 option (kind 0x44 length 0): IHL still bounds the header.
    let mut ip = ipv4(17, 6, 8);
    ip[20..24].copy_from_slice(&[0x44, 0, 0, 0]);
    check(&p, &frame(&[&eth(0x0800), &ip, &udp(9, 9)], 100));
    // Truncated at every length of an Ethernet/IPv4/TCP stack with options.
    let full = frame(&[&eth(0x0800), &ipv4(6, 7, 0), &tcp(10)], 0);
    for len in 14..full.len() {
        check(&p, &full[..len]);
    }
    // Bad TCP data offset.
    check(&p, &frame(&[&eth(0x0800), &ipv4(6, 5, 20), &tcp(2)], 600));
    // Too many VLAN tags.
    let mut parts = vec![eth(0x8100)];
    for i in 0..6u8 {
        let next: u16 = if i == 5 { 0x0800 } else { 0x8100 };
        parts.push(vec![0, i, (next >> 8) as u8, next as u8]);
    }
    parts.push(ipv4(17, 5, 8));
    parts.push(udp(1, 2));
    let refs: Vec<&[u8]> = parts.iter().map(|v| v.as_slice()).collect();
    check(&p, &frame(&refs, 500));
    // MPLS stacks, any depth: always left to user space.
    for depth in [1usize, 3, 12] {
        let mut parts = vec![eth(0x8847)];
        for i in 0..depth {
            parts.push(vec![0, 1, if i + 1 == depth { 1 } else { 0 }, 64]);
        }
        parts.push(ipv4(6, 5, 20));
        parts.push(tcp(5));
        let refs: Vec<&[u8]> = parts.iter().map(|v| v.as_slice()).collect();
        let out = check(&p, &frame(&refs, 400));
        assert_ne!(out.meta.expect("meta").flags & flags::MPLS, 0);
    }
    // ICMP (quoted headers), a tunnel port, ARP: snap.
    check(&p, &frame(&[&eth(0x0800), &ipv4(1, 5, 300)], 300));
    check(
        &p,
        &frame(&[&eth(0x0800), &ipv4(17, 5, 300), &udp(1000, 4789)], 300),
    );
    check(&p, &frame(&[&eth(0x0806)], 28));
    let c = p.counters().expect("counters");
    assert!(c.unparsed > 0);
}

#[test]
fn jumbo_frames_are_multi_buffer_and_cut() {
    let p = load_test();
    let f = frame(&[&eth(0x0800), &ipv4(6, 5, 8900), &tcp(5)], 8900);
    let out = check(&p, &f);
    let meta = out.meta.expect("meta");
    assert_eq!(meta.wire_len as usize, f.len());
    assert_ne!(meta.flags & flags::MULTI_BUFFER, 0);
    assert_eq!(p.counters().expect("counters").multi_buffer, 1);
}

#[test]
fn prefilter_passes_rejected_frames() {
    let p = XdpProgram::load(&ProgramOptions {
        test_mode: true,
        prefilter: bpf::Prefilter {
            ports: [53u16].into_iter().collect(),
            ..Default::default()
        },
        ..ProgramOptions::default()
    })
    .expect("loads");
    let dns = frame(&[&eth(0x0800), &ipv4(17, 5, 30), &udp(40000, 53)], 30);
    let web = frame(&[&eth(0x0800), &ipv4(6, 5, 30), &tcp(5)], 30);
    assert_eq!(p.test_run(&dns).expect("run").action, action::TX);
    let out = p.test_run(&web).expect("run");
    assert_eq!(out.action, action::PASS);
    assert_eq!(out.frame, web);
    assert_eq!(p.counters().expect("counters").pass_filtered, 1);
}

#[test]
fn timestamp_is_tai_and_offset_is_sane() {
    let p = load_test();
    let f = frame(&[&eth(0x0800), &ipv4(17, 5, 8), &udp(1, 2)], 8);
    let meta = p.test_run(&f).expect("run").meta.expect("meta");
    let off = bpf::tai_offset_ns();
    assert!(off.abs() < 100_000_000_000, "offset {off} within 100 s");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_nanos() as i64;
    let utc = meta.utc_ns(off);
    assert!((now - utc).abs() < 5_000_000_000, "utc {utc} vs now {now}");
    assert_eq!(p.clock_source(), bpf::ClockSource::KernelTai);
}

#[test]
fn test_mode_program_refuses_to_attach() {
    let p = load_test();
    assert!(matches!(
        p.attach(1, bpf::AttachMode::Generic, false),
        Err(bpf::BpfError::TestMode)
    ));
}
