"""SMTP: the sans-IO grammar (_wire, _data), the server session and factories (server), delivery,
policy hooks and per-client limits."""
