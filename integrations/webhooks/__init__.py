"""Asana webhooks: registration and health, deliveries, the endpoint."""
