"""First-party cross-cutting plugins, written exactly as a team's own plugin would be."""
