//! ERF records: typed views over bytes, and their encoding.
