"""``agl quickstart``: train a bundled agent end to end on this machine."""
