"""Process wiring: command line, configuration, daemon lifecycle, systemd glue, logging."""
