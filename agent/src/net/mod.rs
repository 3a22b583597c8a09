//! Network sources feeding the DPI engine: capture files now, live capture later.

pub mod pcap_file;
