"""TLS material for the LAN listener."""
