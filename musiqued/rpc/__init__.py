"""JSON-RPC 2.0 control interface: protocol envelopes, the method table, the Unix server."""
