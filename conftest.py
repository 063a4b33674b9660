"""Shared fixtures: personas, the fake Asana served over real HTTP."""
