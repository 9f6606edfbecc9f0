//! Memory-mapped readers of pcap, pcapng and ERF traces.
