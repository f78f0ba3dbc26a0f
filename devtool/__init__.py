"""Runtime, store, worker supervision, ingress, admin API, CLI and TUI of `durable dev`."""
