"""The canonical contract, quality suites and register of processing. Imports nothing of the project."""
