"""MEXC's WebSocket protocol on the sidecar's `/ws`: private user-data streams and public
channels relayed from MEXC (reference section 9)."""
