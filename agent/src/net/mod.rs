//! Network sources feeding the DPI engine: capture files, live capture, and the helpers both need.

pub mod bpf;
pub mod live;
pub mod pcap_file;
pub mod suricata_yaml;
