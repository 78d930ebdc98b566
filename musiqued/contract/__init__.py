"""What both front ends (the RPC server and the HTTP API) answer with: the wire shapes."""
