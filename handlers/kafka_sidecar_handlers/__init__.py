"""Terminal handlers shipped with kafka-sidecar (producer, consumers, admin)."""
