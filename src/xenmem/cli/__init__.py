"""Command-line front ends: `xenmem` for the operator."""
