//! Golden byte tests (docs/erf-format §9 and §13) and property tests of the record reader.

use super::meta::{section, tag, MetaBuilder, TlvIter};
use super::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// §13 variant A, flat hex as printed in the reference (sha256 dd31e78a...0932, checked with
/// sha256sum when the vector was taken from the reference).
const VARIANT_A: &str = "0000008000f15365 0204004e000005ea 0000001122334455 66778899aabb0800
    450005dc12344000 400636b1c0000201 c633640230390050 0000000100000001
    5010ffff00000000 000000000000";

/// §9 file F META record, as printed in the reference.
const FILE_F_META: &str = "
    00 00 00 80 00 f1 53 65  9b 04 00 70 00 00 00 54
    11 01 00 00 c0 ff ee 01
    00 02 00 08 00 00 00 80 00 f1 53 65
    ff 00 00 04 00 00 00 28
    00 10 00 09 63 61 70 65 6e 67 69 6e 65 00 00 00
    00 24 00 0a 74 63 70 20 6f 72 20 75 64 70 00 00
    ff 03 00 04 00 01 00 20
    00 0c 00 04 78 64 70 30
    00 08 00 04 00 00 00 00
    00 1d 00 04 00 00 00 3c
    00 00 00 00";

fn ts_doc() -> Timestamp {
    // 1700000000.5 s
    Timestamp::from_secs_nanos(1_700_000_000, 500_000_000)
}

#[test]
fn timestamp_bytes_match_reference() {
    assert_eq!(ts_doc().0, 0x6553F100_80000000);
    assert_eq!(
        ts_doc().0.to_le_bytes(),
        [0, 0, 0, 0x80, 0, 0xf1, 0x53, 0x65]
    );
}

#[test]
fn golden_eth_record_variant_a() {
    let golden = hex(VARIANT_A);
    assert_eq!(golden.len(), 78);
    let frame = &golden[18..];
    assert_eq!(frame.len(), 60);
    let mut buf = [0xAAu8; 128];
    let n = encode_packet(&mut buf, ts_doc(), 0, FrameKind::Ethernet, 0, 1514, frame).unwrap();
    assert_eq!(n, 78);
    assert_eq!(&buf[..n], &golden[..]);
    assert_eq!(packet_record_len(FrameKind::Ethernet, 1514, 60), 78);

    let r = Record::new_checked(&golden[..]).unwrap();
    assert_eq!(r.ts_le(), ts_doc());
    assert_eq!(r.record_type(), RecordType::Eth);
    assert_eq!(r.flags(), 0x04);
    assert!(r.vlen() && !r.trunc() && !r.rxerror() && !r.dserror());
    assert_eq!(r.iface(), 0);
    assert_eq!(r.rlen_be(), 78);
    assert_eq!(r.lctr_be(), 0);
    assert_eq!(r.wlen_be(), 1514);
    assert_eq!(r.framing_len(), 18);
    assert_eq!(r.caplen(), 60);
    assert_eq!(r.payload(), frame);
    assert_eq!(r.host_id(), None);
}

#[test]
fn golden_ipv4_record() {
    let golden = hex(VARIANT_A);
    // The same packet without its 14-byte Ethernet header: 20 IPv4 + 20 TCP + 8 payload bytes.
    let mut ip = golden[32..].to_vec();
    ip.extend_from_slice(&[0, 0]);
    assert_eq!(ip.len(), 48);
    let mut buf = [0u8; 128];
    let n = encode_packet(&mut buf, ts_doc(), 0, FrameKind::Ipv4, 0, 1500, &ip).unwrap();
    assert_eq!(n, 64);
    assert_eq!(&buf[..16], &hex("0000008000f15365 1604004000 0005dc")[..]);
    assert_eq!(&buf[16..64], &ip[..]);
    let r = Record::new_checked(&buf[..n]).unwrap();
    assert_eq!(r.record_type(), RecordType::Ipv4);
    assert_eq!(r.framing_len(), 16);
    assert_eq!(r.caplen(), 48);
}

#[test]
fn variant_b_padding_counts_as_captured() {
    // §13 variant B: rlen 80 with two pad bytes reads back as 62 captured bytes, which is why the
    // writer never pads a snapped record.
    let mut b = hex(VARIANT_A);
    b[10..12].copy_from_slice(&80u16.to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    assert_eq!(Record::new_checked(&b[..]).unwrap().caplen(), 62);
}

#[test]
fn lctr_and_iface_are_written() {
    let mut buf = [0u8; 128];
    let data = [0x5Au8; 40];
    let n = encode_packet(&mut buf, ts_doc(), 3, FrameKind::Ethernet, 5, 1514, &data).unwrap();
    let r = Record::new_checked(&buf[..n]).unwrap();
    assert_eq!(&buf[12..14], &[0, 5]);
    assert_eq!(r.lctr_be(), 5);
    assert_eq!(r.loss(), Some(5));
    assert_eq!(r.flags(), 0x07);
    assert_eq!(r.iface(), 3);
    assert_eq!(
        encode_packet(&mut buf, ts_doc(), 4, FrameKind::Ethernet, 0, 60, &data),
        Err(EncodeError::BadInterface(4))
    );
}

#[test]
fn full_packet_is_padded_to_8_and_padding_is_hidden() {
    let mut buf = [0xFFu8; 128];
    let data = [0x11u8; 60];
    let n = encode_packet(&mut buf, ts_doc(), 0, FrameKind::Ethernet, 0, 60, &data).unwrap();
    assert_eq!(n, 80); // 18 + 60 = 78, padded to 80
    assert_eq!(&buf[78..80], &[0, 0]);
    let r = Record::new_checked(&buf[..n]).unwrap();
    assert_eq!(r.caplen(), 60);
    assert_eq!(r.payload(), &data[..]);
}

#[test]
fn data_beyond_wlen_is_not_written() {
    let mut buf = [0u8; 128];
    let data = [0x22u8; 70];
    let n = encode_packet(&mut buf, ts_doc(), 0, FrameKind::Ipv6, 0, 50, &data).unwrap();
    assert_eq!(n, 72); // 16 + 50 = 66, full packet: padded to 72
    assert!(buf[66..72].iter().all(|b| *b == 0));
    assert_eq!(Record::new_checked(&buf[..n]).unwrap().caplen(), 50);
}

#[test]
fn small_buffer_is_an_error() {
    let mut buf = [0u8; 40];
    let data = [0u8; 60];
    assert_eq!(
        encode_packet(&mut buf, ts_doc(), 0, FrameKind::Ethernet, 0, 1514, &data),
        Err(EncodeError::BufferTooSmall {
            needed: 78,
            available: 40
        })
    );
}

#[test]
fn largest_frame_fits_in_rlen() {
    let data = vec![1u8; 65535];
    let mut buf = vec![0u8; 70000];
    let n = encode_packet(&mut buf, ts_doc(), 0, FrameKind::Ethernet, 0, 65535, &data).unwrap();
    assert_eq!(n, MAX_RLEN);
    let r = Record::new_checked(&buf[..n]).unwrap();
    assert_eq!(r.caplen(), MAX_RLEN - 18);
}

fn file_f_tlvs() -> Vec<u8> {
    let mut m = MetaBuilder::new();
    m.time(tag::GEN_TIME, ts_doc());
    m.begin_section(section::CAPTURE, 0)
        .string(tag::APP_NAME, "capengine")
        .string(tag::FILTER, "tcp or udp");
    m.begin_section(section::INTERFACE, 1)
        .string(tag::NAME, "xdp0")
        .u32(tag::FCS_LEN, 0)
        .u32(tag::SNAPLEN, 60);
    m.finish()
}

#[test]
fn golden_meta_record_file_f() {
    let golden = hex(FILE_F_META);
    assert_eq!(golden.len(), 112);
    let tlvs = file_f_tlvs();
    assert_eq!(tlvs.len(), 84);
    let host = HostId {
        source_id: 1,
        host_id: 0xc0ffee01,
    };
    let mut out = Vec::new();
    let n = encode_meta(&mut out, ts_doc(), host, &tlvs);
    assert_eq!(n, 112);
    assert_eq!(out, golden);

    let r = Record::new_checked(&golden[..]).unwrap();
    assert_eq!(r.type_byte(), 0x9B);
    assert_eq!(r.record_type(), RecordType::Meta);
    assert_eq!(r.host_id(), Some(host));
    assert_eq!(r.framing_len(), 24);
    assert_eq!(r.caplen(), 84);
    let tags: Vec<(u16, usize)> = TlvIter::new(r.payload())
        .map(|t| (t.tag, t.value.len()))
        .collect();
    assert_eq!(
        tags,
        vec![
            (2, 8),
            (0xFF00, 4),
            (16, 9),
            (36, 10),
            (0xFF03, 4),
            (12, 4),
            (8, 4),
            (29, 4)
        ]
    );
    let t: Vec<_> = TlvIter::new(r.payload()).collect();
    assert_eq!(t[0].as_time(), Some(ts_doc()));
    assert_eq!(t[1].section(), Some((0, 40)));
    assert_eq!(t[2].as_str(), Some("capengine"));
    assert_eq!(t[4].section(), Some((1, 32)));
    assert_eq!(t[7].as_u32(), Some(60));
    assert_eq!(RecordRepr::parse(&r).unwrap().buffer_len(), 112);
}

#[test]
fn repr_round_trip() {
    let golden = hex(VARIANT_A);
    let r = Record::new_checked(&golden[..]).unwrap();
    let repr = RecordRepr::parse(&r).unwrap();
    assert_eq!(repr.buffer_len(), 78);
    let mut buf = vec![0xEEu8; repr.buffer_len()];
    buf[18..].copy_from_slice(r.payload());
    repr.emit(&mut Record::new_unchecked(&mut buf[..]));
    assert_eq!(buf, golden);
}

#[test]
fn setters_write_byte_orders() {
    let mut b = hex(VARIANT_A);
    let mut r = Record::new_unchecked(&mut b[..]);
    r.set_lctr_be(0x0102);
    r.set_wlen_be(0x0304);
    r.set_ts_le(Timestamp(0x1122334455667788));
    r.set_flags(0x05);
    r.payload_mut()[0] = 0x99;
    assert_eq!(&b[12..16], &[1, 2, 3, 4]);
    assert_eq!(&b[0..8], &[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    assert_eq!(b[9], 5);
    assert_eq!(b[18], 0x99);
}

fn kind_of(data: &[u8]) -> RecordError {
    match RecordIter::new(data).last() {
        Some(Err(e)) => e.kind,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn iter_errors_carry_index_and_offset() {
    let rec = hex(VARIANT_A);
    let mut two = rec.clone();
    two.extend_from_slice(&rec);
    let all: Vec<_> = RecordIter::new(&two).collect();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.is_ok()));

    // Truncated last record: the header is whole, the record is not.
    let cut = &two[..78 + 40];
    let items: Vec<_> = RecordIter::new(cut).collect();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[1],
        Err(ErfError {
            index: 1,
            offset: 78,
            kind: RecordError::RlenPastEnd {
                rlen: 78,
                available: 40
            }
        })
    );
    assert_eq!(whole_records_len(cut), 78);
    // A partial header.
    assert_eq!(
        kind_of(&two[..78 + 10]),
        RecordError::TruncatedHeader { available: 10 }
    );

    let mut small = rec.clone();
    small[10..12].copy_from_slice(&8u16.to_be_bytes());
    assert_eq!(kind_of(&small), RecordError::RlenTooSmall { rlen: 8 });

    let mut zero = rec.clone();
    zero[8] = 0;
    assert_eq!(kind_of(&zero), RecordError::TypeZero);

    // Extension bit set, but rlen 16 leaves no room for the extension header.
    let mut ext = rec.clone();
    ext[8] = 0x82;
    ext[10..12].copy_from_slice(&16u16.to_be_bytes());
    assert_eq!(
        kind_of(&ext),
        RecordError::ExtensionOutsideRecord { rlen: 16 }
    );
    // ETH record with rlen 16: the subheader does not fit.
    let mut sub = rec.clone();
    sub[10..12].copy_from_slice(&16u16.to_be_bytes());
    sub.truncate(16);
    assert_eq!(
        kind_of(&sub),
        RecordError::FramingPastRlen {
            framing: 18,
            rlen: 16
        }
    );
    // The iterator stops after an error.
    let mut after = zero.clone();
    after.extend_from_slice(&rec);
    assert_eq!(RecordIter::new(&after).count(), 1);
}

#[test]
fn reads_libtrace_sample_traces() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/traces/");
    let data = std::fs::read(format!("{dir}libtrace-100_packets.erf")).unwrap();
    let recs: Vec<_> = RecordIter::new(&data).map(|r| r.unwrap()).collect();
    assert_eq!(recs.len(), 100);
    assert!(recs.iter().all(|r| r.record_type() == RecordType::Eth));
    assert_eq!(
        recs.iter().map(|r| r.rlen_be() as usize).sum::<usize>(),
        data.len()
    );

    let data = std::fs::read(format!("{dir}libtrace-provenance.erf")).unwrap();
    let recs: Vec<_> = RecordIter::new(&data).map(|r| r.unwrap()).collect();
    assert_eq!(recs.len(), 100);
    for r in &recs {
        assert_eq!(r.record_type(), RecordType::Meta);
        assert!(r.host_id().is_some());
        assert!(TlvIter::new(r.payload()).count() > 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn iter_never_panics_nor_reads_past_rlen(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut total = 0usize;
        for item in RecordIter::new(&data) {
            match item {
                Ok(r) => {
                    let rlen = r.rlen_be() as usize;
                    prop_assert_eq!(r.as_bytes().len(), rlen);
                    prop_assert!(r.framing_len() + r.caplen() <= rlen);
                    prop_assert!(r.payload().len() <= r.wlen_be() as usize);
                    let _ = r.host_id();
                    for t in TlvIter::new(r.payload()) {
                        let _ = (t.as_str(), t.as_u32(), t.section());
                    }
                    total += rlen;
                }
                Err(e) => prop_assert_eq!(e.offset as usize, total),
            }
        }
        prop_assert!(total <= data.len());
    }

    #[test]
    fn encode_then_read_back(
        len in 0usize..200,
        extra in 0u16..2000,
        iface in 0u8..4,
        lctr in any::<u16>(),
        frac in any::<u32>(),
        kind in prop_oneof![Just(FrameKind::Ethernet), Just(FrameKind::Ipv4), Just(FrameKind::Ipv6)],
    ) {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let wlen = len as u16 + extra;
        let ts = Timestamp::from_parts(1_700_000_000, frac);
        let mut buf = [0u8; 256];
        let n = encode_packet(&mut buf, ts, iface, kind, lctr, wlen, &data).unwrap();
        prop_assert_eq!(n, packet_record_len(kind, wlen, len));
        if extra == 0 { prop_assert_eq!(n % 8, 0); }
        let mut it = RecordIter::new(&buf[..n]);
        let r = it.next().unwrap().unwrap();
        prop_assert!(it.next().is_none());
        prop_assert_eq!(r.payload(), &data[..]);
        prop_assert_eq!(r.ts_le(), ts);
        prop_assert_eq!(r.iface(), iface);
        prop_assert_eq!(r.lctr_be(), lctr);
        prop_assert_eq!(r.wlen_be(), wlen);
        prop_assert_eq!(r.record_type(), RecordType::for_frame(kind));
    }
}

/// A packet record written the plain way, field by field from docs/erf-format (§1 header, §3
/// type codes and subheader, §5 writer rule, §7 wlen), independent of the encoder under test.
fn reference_packet(
    ts: Timestamp,
    iface: u8,
    kind: FrameKind,
    lctr: u16,
    wlen: u16,
    data: &[u8],
) -> Vec<u8> {
    let (code, subheader): (u8, &[u8]) = match kind {
        FrameKind::Ethernet => (2, &[0, 0]),
        FrameKind::Ipv4 => (22, &[]),
        FrameKind::Ipv6 => (23, &[]),
    };
    let framing = 16 + subheader.len();
    // Never more than the wire length, never more than fits in rlen 65528.
    let caplen = data.len().min(wlen as usize).min(65528 - framing);
    let mut rlen = framing + caplen;
    if caplen == wlen as usize {
        while rlen % 8 != 0 {
            rlen += 1;
        }
    }
    let mut out = Vec::new();
    for i in 0..8 {
        out.push((ts.0 >> (8 * i)) as u8); // little-endian
    }
    out.push(code);
    out.push(0x04 | iface);
    out.push((rlen >> 8) as u8);
    out.push(rlen as u8);
    out.push((lctr >> 8) as u8);
    out.push(lctr as u8);
    out.push((wlen >> 8) as u8);
    out.push(wlen as u8);
    out.extend_from_slice(subheader);
    out.extend_from_slice(&data[..caplen]);
    out.resize(rlen, 0);
    out
}

/// The record as the earlier encoder wrote it: a [`RecordRepr`] emitted over the data.
fn repr_packet(
    ts: Timestamp,
    iface: u8,
    kind: FrameKind,
    lctr: u16,
    wlen: u16,
    data: &[u8],
) -> Vec<u8> {
    let record_type = RecordType::for_frame(kind);
    let framing = HEADER_LEN + record_type.subheader_len();
    let caplen = data.len().min(wlen as usize).min(MAX_RLEN - framing);
    let repr = RecordRepr {
        ts,
        record_type,
        flags: FLAG_VLEN | iface,
        lctr,
        wlen,
        host_id: None,
        caplen,
    };
    let mut out = vec![0x5Au8; repr.buffer_len()];
    out[framing..framing + caplen].copy_from_slice(&data[..caplen]);
    repr.emit(&mut Record::new_unchecked(&mut out[..]));
    out
}

fn any_kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![
        Just(FrameKind::Ethernet),
        Just(FrameKind::Ipv4),
        Just(FrameKind::Ipv6)
    ]
}

/// Data and wire lengths: mostly around small frames (both sides of wlen), sometimes near the
/// 16-bit limit where the data is cut to fit rlen.
fn lengths() -> impl Strategy<Value = (usize, u16)> {
    prop_oneof![
        8 => (0usize..300, 0u16..320),
        2 => (0usize..300).prop_flat_map(|n| (Just(n), Just(n as u16))),
        1 => (65490usize..65540, 65490u16..=65535),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn encode_packet_matches_reference(
        (len, wlen) in lengths(),
        iface in 0u8..8,
        lctr in any::<u16>(),
        ts in any::<u64>(),
        kind in any_kind(),
        seed in any::<u8>(),
        filler in any::<u8>(),
        room in prop_oneof![Just(None), (0usize..100).prop_map(Some)],
    ) {
        let ts = Timestamp(ts);
        let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let need = packet_record_len(kind, wlen, len);
        // Either room enough (plus some bytes that must stay as they were), or a buffer cut
        // somewhere around the record's length.
        let size = match room {
            None => need + 16,
            Some(r) => (need + 50).saturating_sub(r),
        };
        let mut buf = vec![filler; size];
        let got = encode_packet(&mut buf, ts, iface, kind, lctr, wlen, &data);
        if iface > 3 {
            prop_assert_eq!(got, Err(EncodeError::BadInterface(iface)));
            prop_assert!(buf.iter().all(|&b| b == filler));
            return Ok(());
        }
        let want = reference_packet(ts, iface, kind, lctr, wlen, &data);
        prop_assert_eq!(want.len(), need);
        if size < need {
            prop_assert_eq!(got, Err(EncodeError::BufferTooSmall { needed: need, available: size }));
            prop_assert!(buf.iter().all(|&b| b == filler));
            return Ok(());
        }
        prop_assert_eq!(got, Ok(need));
        prop_assert_eq!(&buf[..need], &want[..]);
        prop_assert!(buf[need..].iter().all(|&b| b == filler), "bytes past rlen were written");
        prop_assert_eq!(&repr_packet(ts, iface, kind, lctr, wlen, &data)[..], &want[..]);
        let layout = PacketLayout::new(kind, wlen, len);
        prop_assert_eq!(layout.rlen, need);
        prop_assert_eq!(Record::new_checked(&want[..]).unwrap().caplen(), layout.caplen);
    }
}
