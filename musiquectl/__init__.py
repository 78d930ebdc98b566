"""musiquectl: the thin command-line client of musiqued. Imports nothing heavy at start-up."""
