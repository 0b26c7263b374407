"""VITAL Desktop: the offline, airgapped spoke of the VITAL radiation-safety AI platform."""

__version__ = "0.1.0"
