"""One module per area of commands; each exposes ``COMMANDS``."""
