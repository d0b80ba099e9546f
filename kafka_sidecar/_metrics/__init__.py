"""Metrics as a core service: a registry per sidecar (:mod:`.registry`) and pluggable exporters (:mod:`.service`)."""
