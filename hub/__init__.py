"""The `hub` command line, settings and the in-process pipeline runner."""
