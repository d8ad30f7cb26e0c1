//! FlowRecord -> windowed metric series.
//!
//! Plain `push()` / `flush()`; no I/O, no async, deterministic for a given input and clock.
