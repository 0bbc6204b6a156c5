"""Local stand-ins for remote services, so tests exercise real clients without a network."""
