//! Policy text form: parsing never panics, and every accepted policy's canonical form parses
//! back to the same policy.
#![no_main]

use anonymise::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = text.parse::<Policy>() {
        let canonical = policy.to_string();
        let back: Policy = canonical.parse().expect("canonical form parses");
        assert_eq!(back, policy);
        assert_eq!(back.to_string(), canonical);
        let _ = policy.explain();
    }
});
