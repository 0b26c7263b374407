"""Domain types, errors, and the progress/cancel primitives shared by every layer (no Qt)."""
