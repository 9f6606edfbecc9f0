//! A whole DAG capture: card records in, anonymised header-only ERF out.
