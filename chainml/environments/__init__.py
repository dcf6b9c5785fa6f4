"""Environments and deployments: what runs where, checked against what was tested."""
