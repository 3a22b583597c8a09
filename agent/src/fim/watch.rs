//! Real-time watching (being built).
