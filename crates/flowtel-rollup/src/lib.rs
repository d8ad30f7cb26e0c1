//! FlowRecord -> windowed metric series.
//!
//! Plain `push()` / `flush()`; no I/O, no async, deterministic for a given input and clock.

pub mod series;

pub use series::{AttrValue, Point, WindowBatch};
