"""chargegrid: an open-source EV charging management platform (CSMS)."""

__version__ = "0.1.0"
