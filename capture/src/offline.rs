//! The offline pipeline: existing traces in, anonymised header-only ERF out.
