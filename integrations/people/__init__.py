"""Employees and their Asana users: mapping and CSV import."""
