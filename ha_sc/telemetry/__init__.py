"""Tracing and metrics: OpenTelemetry spans, Prometheus metrics."""
