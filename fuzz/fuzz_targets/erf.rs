//! Fuzzes the ERF record reader: no input may panic it or make it read past a record's rlen,
//! and every record it accepts re-encodes (packet types) to a record it reads back the same.
#![no_main]

use capture::erf::meta::TlvIter;
use capture::erf::{encode_packet, Record, RecordIter, RecordType};
use capture::packet::FrameKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut offset = 0usize;
    let mut out = vec![0u8; 70_000];
    for item in RecordIter::new(data) {
        let Ok(r) = item else { break };
        let rlen = r.rlen_be() as usize;
        assert!(r.framing_len() + r.caplen() <= rlen);
        assert_eq!(r.as_bytes().len(), rlen);
        let _ = r.host_id();
        offset += rlen;
        if r.record_type() == RecordType::Meta {
            for t in TlvIter::new(r.payload()) {
                let _ = (t.as_str(), t.as_u32(), t.as_u64(), t.as_time(), t.section());
            }
            continue;
        }
        let kind = match r.record_type() {
            RecordType::Eth => FrameKind::Ethernet,
            RecordType::Ipv4 => FrameKind::Ipv4,
            RecordType::Ipv6 => FrameKind::Ipv6,
            _ => continue,
        };
        let iface = r.iface();
        let n = encode_packet(
            &mut out,
            r.ts_le(),
            iface,
            kind,
            r.lctr_be(),
            r.wlen_be(),
            r.payload(),
        )
        .expect("a 70000-byte buffer holds any record");
        let back = Record::new_checked(&out[..n]).expect("our own records are valid");
        assert_eq!(back.payload(), r.payload());
        assert_eq!(back.wlen_be(), r.wlen_be());
        assert_eq!(back.ts_le(), r.ts_le());
    }
    assert!(offset <= data.len());
});
