//! Series -> OTLP `ExportMetricsServiceRequest`, and the tonic client that sends it.
//!
//! Knows nothing of NetFlow.
