"""Signed bundles between the hub and airgapped sites (format, signing, trust, read/write).

Nothing here touches the site store or the services: `services/exchange.py` wires this
package to the store. Every trust decision lives in `trust.py` (IO-free); every cap on an
untrusted length lives in `limits.py`. The byte layout is specified in `bundles/FORMAT.md`.
"""
