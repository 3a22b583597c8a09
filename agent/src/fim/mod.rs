//! FIM adapters: walking and hashing (`scan`), looking at one path (`observe`), the SQLite baseline
//! (`store`), content-addressed copies (`objects`), real-time watching (`watch`), restore of protected files
//! (`restore`), package records (`packages`), turning findings into events (`report`), and the source the
//! agent runs (`source`).

pub mod attribution;
pub mod config;
pub mod objects;
pub mod observe;
pub mod packages;
pub mod report;
pub mod restore;
pub mod scan;
pub mod source;
pub mod store;
pub mod watch;

pub use report::Reporter;
pub use scan::{scan, Finding, Progress, ScanOptions, ScanStats};
pub use source::run_fim_source;
pub use store::Store;
