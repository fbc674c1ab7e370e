"""HTTP and WebSocket front door (aiohttp): /rpc, /images/{id}.png, /healthz and the web app."""
