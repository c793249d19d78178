"""The store: the only module that talks to a database (see base.py for the interface)."""
