"""The business logic: importer, tracker, enricher, verifier. No sockets, no JSON-RPC."""
