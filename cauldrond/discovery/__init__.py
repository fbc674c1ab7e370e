"""mDNS advertisement of the daemon on the LAN."""
