//! DPI engine (placeholder until built).
