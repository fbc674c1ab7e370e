"""msgpack-RPC over WebSocket: message shapes and limits (``protocol``), the method registry (``registry``),
one connection's read/dispatch/write loop (``connection``) and the built-in methods (``methods``)."""
