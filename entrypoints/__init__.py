"""What users run: the command line, the embedded stack and the demo's terminal view (on top of
every other package)."""
