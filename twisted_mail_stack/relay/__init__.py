"""Mail for other hosts: the durable queue (and, later, the engine that empties it)."""
