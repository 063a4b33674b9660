"""The fake Asana: tests, bench and local simulation only; product code never imports it."""
