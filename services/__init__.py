"""Process entry points (``python -m services.<name>``); each only wires settings to adgen."""
